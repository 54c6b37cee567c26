"""Periodic repair, safe to run in any number of processes at once: every action is a compare-and-set.

- expired leases: a worker died mid-step; the attempt fails as WorkerLost and is retried;
- lost jobs: a step queued with no live RQ job (Redis restarted empty, enqueue lost) is enqueued again;
- due timers: pending steps whose backoff elapsed are admitted into their pools;
- due schedules: each due time starts its run once (``engine.schedules``: a compare-and-set on the schedule);
- debounced starts whose window passed start their run (``engine.debounce``).

On PostgreSQL a copy skips a run whose row another process holds locked (``FOR UPDATE SKIP LOCKED``): that
process is already moving the run, so copies spread over different runs instead of queueing behind each other,
and whatever is still due is seen at the next tick.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.worker import Worker

from .. import conf, engine, metrics
from .. import logging as step_logging
from ..engine import schedule_admin, schedules
from ..store.models import RUN_TERMINAL, Run, StepRun, StepStatus
from . import dispatch, heartbeats

log = logging.getLogger(__name__)
LIVE_JOB = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
BATCH = 200
TAKEN_PATIENCE = 30.0  # seconds a started, unclaimed job of a registered worker counts as about to be claimed


def _unless_busy(run_id: int, transition, *args) -> bool:
    """``transition(*args)`` (an engine transition of run ``run_id``), skipped while another process holds the run.
    Its log lines carry the run's id (``workflows.logging``)."""
    with step_logging.bound(run_id):
        return _transition_unless_busy(run_id, transition, *args)


def _transition_unless_busy(run_id: int, transition, *args) -> bool:
    if not transaction.get_connection().features.has_select_for_update_skip_locked:
        return transition(*args)
    with transaction.atomic():
        if not list(Run.objects.select_for_update(skip_locked=True).filter(pk=run_id).values_list("pk")):
            return False
        return transition(*args)  # the engine's own lock() re-locks the row this transaction already holds


def expire_leases() -> int:
    rows = list(StepRun.objects.expired_leases().values_list("id", "run_id")[:BATCH])
    return sum(_unless_busy(run_id, engine.lease_expired, i) for i, run_id in rows)


def _job_is_live(step_run_id: int, connection) -> bool:
    try:
        job = Job.fetch(dispatch.job_id(step_run_id), connection=connection, serializer=dispatch.JSONSerializer)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:  # and really in its queue: not stuck in RQ's intermediate list (see below)
        return connection.lpos(Queue.redis_queue_namespace_prefix + job.origin, job.id) is not None
    if status == JobStatus.STARTED:  # a worker took it and has not claimed the step yet (a slow or loaded worker)
        return _taken_recently(job, connection)
    return status in LIVE_JOB


def _taken_recently(job: Job, connection) -> bool:
    """A started job whose worker is registered and took it less than a lease, REQUEUE_AFTER_SECONDS or
    TAKEN_PATIENCE ago (the longest): that worker is about to claim the step. One that took it longer ago and still
    has not claimed died in between (its registration outlives it by minutes) or is stuck: the job is as good as
    lost."""
    if not job.worker_name or not connection.exists(Worker.redis_worker_namespace_prefix + job.worker_name):
        return False
    # At least TAKEN_PATIENCE: a live worker on a loaded machine may take seconds from dequeue to claim, and a job
    # enqueued twice only costs a duplicate; a worker that died in that window is rare and waits this long.
    patience = max(float(conf.get("LEASE_SECONDS")), float(conf.get("REQUEUE_AFTER_SECONDS")), TAKEN_PATIENCE)
    return job.started_at is not None and timezone.now() - job.started_at < timedelta(seconds=patience)


def requeue_lost(older_than: float | None = None) -> int:
    """Enqueue again the steps queued for longer than ``older_than`` seconds whose RQ job is gone.

    A job a live worker has just started is not gone: that worker claims the step soon, and enqueuing it again
    would only make a duplicate. Gone also means a job still marked queued but no longer in its queue: a worker
    moved it to RQ's intermediate list and then lost Redis (a restart from its own persistence keeps it there, and
    RQ cleans that list only every few minutes). Queues hold at most the pools' free slots, so the LPOS check is cheap.
    """
    age = conf.get("REQUEUE_AFTER_SECONDS") if older_than is None else older_than
    now = timezone.now()
    rows = list(
        StepRun.objects.filter(status=StepStatus.QUEUED, queued_at__lte=now - timedelta(seconds=age))
        .order_by("queued_at")
        .values_list("id", "pool")[:BATCH]
    )
    if not rows:
        return 0
    connection = dispatch.get_connection()
    requeued = 0
    for sr_id, pool in rows:
        if _job_is_live(sr_id, connection):
            continue
        if engine.mark_requeued(sr_id, now - timedelta(seconds=age)):
            log.info("re-enqueuing step run %s: its RQ job is missing", sr_id)
            dispatch.enqueue(sr_id, pool)
            requeued += 1
    return requeued


def fire_timers() -> int:
    """Due sleeps end and event waits time out."""
    ids = list(
        StepRun.objects.filter(status=StepStatus.WAITING, kind__in=("sleep", "event"), due_at__lte=timezone.now())
        .order_by("due_at")
        .values_list("id", "run_id")[:BATCH]
    )
    return sum(_unless_busy(run_id, engine.fire_timer, i) for i, run_id in ids)


def sync_children() -> int:
    """Parents whose nested step missed its child's end (the process died between the two transactions)."""
    ids = list(
        Run.objects.filter(
            status__in=RUN_TERMINAL,
            parent_step__status__in=(StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SUSPENDED),
            finished_at__lte=timezone.now() - timedelta(seconds=1),
        ).values_list("id", flat=True)[:BATCH]
    )
    for child_id in ids:
        engine.child_changed(child_id)
    return len(ids)


def fire_schedules(now=None) -> int:
    """Due schedules start their runs (``now``: injectable, for tests)."""
    return schedules.fire_due(now)


def tick(requeue_after: float | None = None) -> dict[str, int]:
    done = {
        "expired": expire_leases(),
        "requeued": requeue_lost(requeue_after),
        "timers": fire_timers(),
        "scheduled": fire_schedules(),
        "children": sync_children(),
        "debounced": engine.fire_debounced(),
        "admitted": engine.pump(),
    }
    metrics.recovered(done)
    return done


def sync_schedules() -> None:
    """The code-defined schedules into the database, as the loop starts (the code changed: the loop restarted)."""
    try:
        changed = schedule_admin.sync_code()
        if any(changed.values()):
            log.info("code-defined schedules: %s", changed)
    except DatabaseError as exc:  # not migrated yet, or down: the next start tries again
        log.warning("could not sync the code-defined schedules: %s", exc)


def loop(stop=lambda: False) -> None:
    """Tick every TICK_SECONDS until ``stop()``, beating (``runtime.heartbeats``) with the last tick's actions."""
    record = heartbeats.TickRecord()
    with heartbeats.beating("recovery", record.state):
        _loop(stop, record)


def _loop(stop, record: heartbeats.TickRecord) -> None:
    period = float(conf.get("TICK_SECONDS"))
    sync_schedules()
    failing_since = reported = 0.0
    while not stop():
        started = time.monotonic()
        try:
            close_old_connections()
            done = tick()
            record.ticked(done)
            if any(done.values()):
                log.info("recovery: %s", done)
            if failing_since:
                log.warning("recovery ticks work again after %.1fs", started - failing_since)
                failing_since = 0.0
        except Exception as exc:  # database or Redis down: keep trying, never die; say so every 10 s
            record.failed(exc)
            if not failing_since:
                failing_since = reported = started
                outage = isinstance(exc, DatabaseError | RedisError)  # expected: one line; anything else: its traceback
                log.warning("recovery tick failed: %s: %s", type(exc).__name__, exc, exc_info=not outage)
            elif started - reported >= 10:
                reported = started
                log.warning("recovery ticks failing for %.0fs: %s", started - failing_since, exc)
            close_old_connections()
        time.sleep(max(0.0, period - (time.monotonic() - started)))
