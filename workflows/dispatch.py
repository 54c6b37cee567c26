"""Pools and their RQ queues: admit ready steps under each pool's limit and enqueue them after commit."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import django_rq
from django.db import transaction
from rq import Queue
from rq.serializers import JSONSerializer

from . import conf, engine, faults

log = logging.getLogger(__name__)
JOB_FUNC = "workflows.jobs.execute_step"
_queues: dict[str, Queue] = {}


def get_queue(name: str) -> Queue:
    """The RQ queue ``name``. Jobs are JSON-serialised and carry only a StepRun id, never user data."""
    if name not in _queues:
        _queues[name] = django_rq.get_queue(name, serializer=JSONSerializer, commit_mode="auto")
    return _queues[name]


def get_connection():
    return get_queue(conf.queue_names()[0]).connection


def job_id(step_run_id: int) -> str:
    return f"workflows-step-{step_run_id}"


def queue_of(pool: str) -> str:
    return conf.pool(pool).get("queue", pool)


def enqueue(step_run_id: int, pool: str) -> None:
    faults.point("before_enqueue")  # after the commit that queued the step, before its RQ job exists
    try:
        get_queue(queue_of(pool)).enqueue(
            JOB_FUNC, step_run_id, job_id=job_id(step_run_id), job_timeout=-1, result_ttl=0, failure_ttl=86400
        )
    except Exception:  # Redis unreachable: the step stays queued and recovery enqueues it again
        log.warning("could not enqueue step run %s; recovery will retry", step_run_id, exc_info=True)


def pump(pools: Iterable[str] | None = None) -> int:
    """Admit due pending steps of each pool into its free slots; enqueue them once admitted."""
    admitted = 0
    for name in sorted(pools or conf.pools()):
        ids = engine.admit(name, int(conf.pool(name)["max_parallel"]))
        for sr_id in ids:
            transaction.on_commit(lambda sr_id=sr_id, name=name: enqueue(sr_id, name), robust=True)
        admitted += len(ids)
    return admitted
