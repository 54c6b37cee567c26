"""The WORKFLOWS setting, read lazily with defaults."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    "POOLS": {"default": {"queue": "default", "max_parallel": 10}},
    "DEFAULT_POOL": "default",
    "WORKER_CLASS": "rq.worker.Worker",  # forking, isolates steps; rq.worker.SimpleWorker is faster
    "LEASE_SECONDS": 30.0,  # a running step's lease; renewed by its worker's heartbeat
    "HEARTBEAT_SECONDS": 1.0,  # how often a running step checks for cancel and renews its lease
    "TICK_SECONDS": 0.25,  # recovery loop period: due timers, expired leases, lost jobs
    "REQUEUE_AFTER_SECONDS": 30.0,  # a queued step with no RQ job for this long is enqueued again
    "RECONNECT_SECONDS": 60.0,  # a worker retries reporting a step's outcome this long while the database is down
    "EAGER_SECONDS": 1.0,  # a job runs the successors its step hands its slot to while younger than this; 0: never
    "DEFAULT_RETRIES": 0,
    "DEFAULT_BACKOFF": 1.0,
    "DEFAULT_TIMEOUT": None,
}


def get(name: str) -> Any:
    return getattr(settings, "WORKFLOWS", {}).get(name, DEFAULTS[name])


def pools() -> dict[str, dict[str, Any]]:
    return get("POOLS")


def pool(name: str) -> dict[str, Any]:
    try:
        return pools()[name]
    except KeyError:
        from .exceptions import WorkflowDefinitionError

        raise WorkflowDefinitionError(f"Unknown pool {name!r}: add it to WORKFLOWS['POOLS']") from None


def queue_names() -> list[str]:
    return sorted({p.get("queue", name) for name, p in pools().items()})


def worker_class() -> type:
    return import_string(get("WORKER_CLASS"))
