"""Handing queued steps to workers, after commit: pool admission here, the queue behind a port.

The runtime layer (RQ) connects its ``enqueue`` at start-up (``connect``), and what its queues hold
(``connect_stats``, for the operations page); the engine never imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from .. import conf
from .pools import admit

log = logging.getLogger(__name__)
Enqueue = Callable[[int, str], None]  # (step run id, pool)
_enqueue: Enqueue | None = None
QueueStats = Callable[[], list[dict[str, Any]]]  # each queue: name, queued, started, failed
_queue_stats: QueueStats | None = None


def connect(fn: Enqueue) -> None:
    global _enqueue
    _enqueue = fn


def connect_stats(fn: QueueStats) -> None:
    global _queue_stats
    _queue_stats = fn


def queue_stats() -> list[dict[str, Any]]:
    """Each queue's jobs waiting, started and failed; none without a connected queue. May raise Redis' errors."""
    return _queue_stats() if _queue_stats else []


def enqueue(step_run_id: int, pool: str) -> None:
    """Give a queued step its job (call after commit). Without a connected queue it stays queued for recovery."""
    if _enqueue is None:
        log.warning("no queue connected (is 'workflows' in INSTALLED_APPS?); step run %s waits", step_run_id)
        return
    _enqueue(step_run_id, pool)


def enqueue_after_commit(step_run_id: int, pool: str) -> None:
    transaction.on_commit(lambda: enqueue(step_run_id, pool), robust=True)


def pump(pools: Iterable[str] | None = None) -> int:
    """Admit due pending steps of each pool into its free slots; enqueue them once admitted."""
    admitted = 0
    for name in sorted(pools or conf.pools()):
        ids = admit(name, conf.pool(name))
        for sr_id in ids:
            enqueue_after_commit(sr_id, name)
        admitted += len(ids)
    return admitted
