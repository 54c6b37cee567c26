"""Fair admission, outages after commit, and recovery's view of a job a worker has just taken."""

import logging
from datetime import timedelta

from django.db import OperationalError, transaction
from django.utils import timezone
from rq.job import Job, JobStatus
from rq.worker import Worker

from tests.testapp import flows
from workflows import engine
from workflows.engine import outages
from workflows.models import Run, StepRun, StepStatus
from workflows.runtime import dispatch, recovery
from workflows.testing import drain


def test_admission__a_retry_of_a_run_under_way_goes_before_the_first_steps_of_later_runs(engine_db):
    first = flows.admission.start({"value": 0})  # its first attempt fails; the retry is due at once
    later = [flows.admission.start({"value": i}) for i in range(1, 100)]  # 99 runs on a pool of 3
    drain(timeout=120)
    retry = StepRun.objects.get(run=first, path="fails_first_time_at_zero", attempt=2)
    assert retry.status == StepStatus.SUCCEEDED and retry.queued_at is not None
    ahead = StepRun.objects.filter(
        run__in=later, path="fails_first_time_at_zero", attempt=1, queued_at__lt=retry.queued_at
    ).count()
    assert ahead <= 3  # only those already holding the pool's 3 slots when the first attempt failed
    first.refresh_from_db()
    assert first.status == "succeeded" and first.output == {"value": 1}
    assert set(Run.objects.filter(pk__in=[r.pk for r in later]).values_list("status", flat=True)) == {"succeeded"}


def test_outages__admission_failing_after_commit_is_one_warning_then_a_note_when_it_works_again(
    engine_db, monkeypatch, caplog
):
    def database_down(pools=None):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(engine.dispatch, "pump", database_down)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        with transaction.atomic():
            engine.core.pump_after_commit({"default"})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "pool admission" in r.getMessage()]
    assert errors == [] and len(warnings) == 1 and warnings[0].exc_info is None
    assert "shutting down" in warnings[0].getMessage()
    monkeypatch.undo()
    with transaction.atomic():
        engine.core.pump_after_commit({"default"})
    assert any("works again" in r.getMessage() for r in caplog.records)
    assert outages._failing_since == {}


def _queued_step(redis_conn) -> StepRun:
    run = flows.counter.start({"value": 1})
    return run.steps.get(status=StepStatus.QUEUED)


def _take(sr: StepRun, redis_conn, worker: str, started_ago: float) -> None:
    """What a worker does when it takes a job off the queue, before it claims the step."""
    job = Job.fetch(dispatch.job_id(sr.pk), connection=redis_conn, serializer=dispatch.JSONSerializer)
    redis_conn.lrem(f"rq:queue:{job.origin}", 0, job.id)
    job.worker_name, job.started_at = worker, timezone.now() - timedelta(seconds=started_ago)
    job.save()
    job.set_status(JobStatus.STARTED)
    if worker:
        redis_conn.hset(Worker.redis_worker_namespace_prefix + worker, "birth", "now")


def test_recovery__a_job_a_live_worker_has_just_taken_is_not_enqueued_again(engine_db, redis_conn):
    sr = _queued_step(redis_conn)
    _take(sr, redis_conn, "busy-worker", started_ago=1)
    assert recovery.requeue_lost(older_than=0) == 0


def test_recovery__a_job_taken_long_ago_or_by_a_worker_that_is_gone_is_enqueued_again(engine_db, redis_conn):
    stale = _queued_step(redis_conn)
    _take(stale, redis_conn, "slow-worker", started_ago=600)  # took it ten minutes ago and never claimed it
    orphan = _queued_step(redis_conn)
    _take(orphan, redis_conn, "", started_ago=1)
    assert recovery.requeue_lost(older_than=0) == 2
    drain()
    assert {r.status for r in (stale.run, orphan.run) if r.refresh_from_db() is None} == {"succeeded"}
