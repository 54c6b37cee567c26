"""Open websocket connections per user, counted in Redis across every daphne process
(``LIVE["MAX_CONNECTIONS_PER_USER"]``).

Each connection holds a lease in a sorted set per user (member: its channel name, score: when the lease ends).
The consumer's sweep renews it and disconnecting removes it; the leases of a daphne that crashed simply expire,
so its slots come back after ``lease_seconds()`` without anyone cleaning up.
"""

from __future__ import annotations

import logging
import math

from .. import conf
from .redis_client import short_lived

log = logging.getLogger(__name__)

TOO_MANY_CONNECTIONS = 4429  # close code: the user has MAX_CONNECTIONS_PER_USER connections open already

# KEYS[1]: the user's set; ARGV: member, lease seconds, limit (0: renew whatever the count). Redis's own clock,
# so that daphnes on several machines agree. 1: held, 0: refused.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local lease, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if limit > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(lease))
return 1
"""


def key(user_id: int) -> str:
    return f"workflows:live:connections:{user_id}"


def lease_seconds() -> float:
    """How long a connection's slot outlives its last renewal: a few sweeps."""
    return max(30.0, 3 * conf.live("SWEEP_SECONDS"))


async def _run(script: str, keys: list[str], args: list) -> int:
    async with short_lived() as client:
        return int(await client.eval(script, len(keys), *keys, *args))


async def claim(user_id: int, channel: str, renew: bool = False) -> bool:
    """Take (or with ``renew``, keep) a slot for ``channel``. False: the user has too many connections.
    Without Redis the connection is let in (the channel layer needs Redis anyway; failing closed would lock
    everyone out of live updates for a Redis hiccup)."""
    limit = 0 if renew else conf.live("MAX_CONNECTIONS_PER_USER")
    try:
        return bool(await _run(_CLAIM, [key(user_id)], [channel, math.ceil(lease_seconds()), limit]))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("live updates: counting connections in Redis failed (%s: %s); letting it in", type(exc), exc)
        return True


async def release(user_id: int, channel: str) -> None:
    try:
        await _run("return redis.call('ZREM', KEYS[1], ARGV[1])", [key(user_id)], [channel])
    except Exception as exc:  # noqa: BLE001 - the lease expires by itself
        log.info("live updates: releasing a connection slot failed (%s); it expires by itself", exc)
