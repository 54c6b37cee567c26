"""Which channel-layer groups have listeners, asked synchronously in one Redis round trip.

Most transitions happen while nobody watches their run, so most of their messages go to groups with no member.
channels-redis's ``group_send`` still costs two round trips per group on an event loop (about a third of a no-op
step's time in a worker, measured with ``bench.floor``); asking once, in one pipeline, for all of a
publication's groups lets the sender skip the empty ones and skip the event loop when all are empty.

This reads channels-redis's group keys (``RedisChannelLayer._group_key``: a sorted set of channel names scored
by when they joined, members older than ``group_expiry`` being stale) and is used only for that layer with plain
hosts (a URL or connection arguments); for any other layer every group counts as listened to, and messages go out
as before. A listener that joins just after the read misses nothing: it catches up from the journal by ``seq``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import redis

_clients: dict[tuple[int, int], redis.Redis] = {}  # (id of the layer, host index) -> a sync client


def supported(layer: Any) -> bool:
    """Can the groups of ``layer`` be read here (channels-redis's core layer, hosts without sentinels)?"""
    try:
        from channels_redis.core import RedisChannelLayer
    except ImportError:
        return False
    return isinstance(layer, RedisChannelLayer) and all(
        "master_name" not in host and "sentinels" not in host for host in layer.hosts
    )


def _client(layer: Any, index: int, timeout: float) -> redis.Redis:
    key = (id(layer), index)
    if key not in _clients:
        host = {"socket_timeout": timeout, "socket_connect_timeout": timeout, **layer.hosts[index]}
        address = host.pop("address", None)
        _clients[key] = redis.Redis.from_url(address, **host) if address else redis.Redis(**host)
    return _clients[key]


def forget(layer: Any) -> None:
    """Drop the connections kept for ``layer`` (it is being closed)."""
    for key in [k for k in _clients if k[0] == id(layer)]:
        _clients.pop(key).close()


def listened(layer: Any, groups: set[str], timeout: float) -> set[str]:
    """The ``groups`` that have at least one member that has not expired. Raises Redis's errors."""
    by_host: dict[int, list[str]] = defaultdict(list)
    for group in sorted(groups):
        by_host[layer.consistent_hash(group)].append(group)
    since = int(time.time()) - layer.group_expiry
    found = set()
    for index, names in by_host.items():
        with _client(layer, index, timeout).pipeline(transaction=False) as pipe:
            for group in names:
                pipe.zcount(layer._group_key(group), since, "+inf")
            counts = pipe.execute()
        found.update(group for group, count in zip(names, counts, strict=True) if count)
    return found
