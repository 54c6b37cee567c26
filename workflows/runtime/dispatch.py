"""RQ queues: the engine's ``enqueue`` port, connected at start-up. Jobs are JSON and carry a StepRun id only."""

from __future__ import annotations

import logging

import django_rq
from rq import Queue
from rq.serializers import JSONSerializer

from .. import conf, faults

log = logging.getLogger(__name__)
JOB_FUNC = "workflows.runtime.jobs.execute_step"
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


def step_run_of(rq_job_id: str | None) -> int | None:
    """The StepRun id of one of our job ids (None for another job, or none)."""
    prefix = job_id(0)[:-1]
    if rq_job_id and rq_job_id.startswith(prefix) and rq_job_id[len(prefix) :].isdigit():
        return int(rq_job_id[len(prefix) :])
    return None


def enqueue(step_run_id: int, pool: str) -> None:
    faults.point("before_enqueue")  # after the commit that queued the step, before its RQ job exists
    try:
        queue = get_queue(conf.queue_of(pool))
        with queue.connection.pipeline() as pipe:  # one round trip to Redis, where RQ alone makes two
            queue.enqueue(
                JOB_FUNC, step_run_id, job_id=job_id(step_run_id), job_timeout=-1, result_ttl=0, failure_ttl=86400,
                pipeline=pipe,
            )  # fmt: skip
            pipe.execute()
    except Exception:  # Redis unreachable: the step stays queued and recovery enqueues it again
        log.warning("could not enqueue step run %s; recovery will retry", step_run_id, exc_info=True)


def queue_stats() -> list[dict[str, int | str]]:
    """Each pool queue's jobs waiting, started (a worker has them) and failed (kept a day: ``failure_ttl``)."""
    stats = []
    for name in conf.queue_names():
        queue = get_queue(name)
        stats.append(
            {
                "name": name,
                "queued": queue.count,
                "started": queue.started_job_registry.count,
                "failed": queue.failed_job_registry.count,
            }
        )
    return stats


def empty_queues() -> None:
    """Drop every job of the pools' queues (tests: jobs of an earlier test's runs point at rows that are gone)."""
    for name in conf.queue_names():
        get_queue(name).empty()
