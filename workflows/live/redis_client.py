"""A short-lived asyncio Redis client for the live layer's own reads and counts (partial token text, the
per-user connection quota): quick timeouts, so a Redis outage costs a consumer two seconds, never a hang."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from .. import conf


@contextlib.asynccontextmanager
async def short_lived() -> AsyncIterator[Any]:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(conf.redis_url(), socket_timeout=2, socket_connect_timeout=2)
    try:
        yield client
    finally:
        await client.aclose()
