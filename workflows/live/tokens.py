"""Live tokens: batches of an agent's streamed text (``agents.streaming``) to the run's channel-layer group, and
the text so far in Redis for a page that subscribes mid-stream (connected as a token sink by ``apps.py``).

Nothing here is durable, on purpose: the journal event of the completed model request carries the final message.
Per run, one Redis hash ``workflows:tokens:<run id>`` maps each model request still streaming (its path) to its
text so far; it expires ``TTL`` seconds after its last batch (a worker that died mid-stream leaves nothing
behind for long) and a request's field goes when the request ends.

The agent's event loop must not wait for Redis: a batch is handed to the publication thread of the process
(``engine.publication.background``: one thread, so batches go out in order) and sent from there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from django.conf import settings

from .. import conf
from ..engine.publication import background
from .payloads import run_group
from .redis_client import short_lived
from .sender import send

log = logging.getLogger(__name__)

TTL = 300  # seconds the text so far of a run's streaming requests outlives their last batch
MESSAGE_TYPE = "run.tokens"  # the consumer's handler: LiveConsumer.run_tokens
_local = threading.local()
_failed_at = float("-inf")


def key(run_id: int) -> str:
    return f"workflows:tokens:{run_id}"


def _redis() -> Any:
    import redis

    client = getattr(_local, "redis", None)
    if client is None or _local.pid != os.getpid():
        client = _local.redis = redis.Redis.from_url(conf.redis_url(), socket_timeout=2, socket_connect_timeout=2)
        _local.pid = os.getpid()
    return client


def message(batch: Any) -> dict[str, Any]:
    return {"type": MESSAGE_TYPE, "run": batch.run_id, "step": batch.path, "text": batch.text, "offset": batch.offset}


def frame(topic: str, message: dict[str, Any]) -> dict[str, Any]:
    """The client's frame for a ``run.tokens`` message (or a partial text read from Redis)."""
    step, text, offset = message["step"], message["text"], message["offset"]
    return {"op": "tokens", "topic": topic, "step": step, "text": text, "offset": offset}


def publish(batch: Any) -> None:
    """The token sink (``batch``: an ``agents.streaming.TokenBatch``): never blocks, never raises (a failed
    batch is dropped; the final message still comes)."""
    if not getattr(settings, "CHANNEL_LAYERS", None):
        return
    background().submit(_publish_now, batch)


def _publish_now(batch: Any) -> None:
    global _failed_at
    if time.monotonic() - _failed_at < conf.live("PUBLISH_RETRY_AFTER"):
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        if batch.done:
            pipe.hdel(key(batch.run_id), batch.path)
        else:
            pipe.hset(key(batch.run_id), batch.path, batch.so_far)
            pipe.expire(key(batch.run_id), TTL)
        pipe.execute()  # first the text so far, then the batch: a subscriber in between gets both, never neither
        if not batch.done:
            send([(run_group(batch.run_id), message(batch))], conf.live("PUBLISH_TIMEOUT"))
    except Exception as exc:
        _failed_at = time.monotonic()
        log.warning("live tokens: publishing failed (%s: %s); dropping tokens for a while", type(exc).__name__, exc)


async def partial_frames(run_id: int, topic: str) -> list[dict[str, Any]]:
    """``tokens`` frames with the whole text so far of each of the run's requests that are streaming now."""
    try:
        async with short_lived() as client:
            found = await client.hgetall(key(run_id))
    except Exception as exc:  # noqa: BLE001 - without Redis there is no partial text; the final message comes
        log.info("live tokens: reading the partial text of run %s failed: %s", run_id, exc)
        return []
    return [
        frame(topic, {"step": path.decode(), "text": text.decode(), "offset": 0})
        for path, text in sorted(found.items())
    ]
