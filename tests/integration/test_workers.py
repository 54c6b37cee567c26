"""Runs executed by real RQ worker processes (forking and simple) against the real Redis and test database."""

from __future__ import annotations

import os

import pytest
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from tests.testapp import flows, worker_flows
from workflows import conf
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.runtime import dispatch

from .conftest import FORKING, SIMPLE, attempts, finished, wait_for

pytestmark = pytest.mark.integration
BOTH_CLASSES = pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])


def step_in(run: Run, path: str, *statuses: str) -> StepRun | None:
    sr = run.step(path)
    return sr if sr is not None and sr.status in statuses else None


@BOTH_CLASSES
def test_chain__five_steps_succeed_across_two_worker_processes(start_workers, worker_class):
    start_workers(2, worker_class)

    run = finished(flows.chain5.start({"value": 1}))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"value": 25}  # ((1 + 1) * 2 + 1) ** 2
    steps = list(StepRun.objects.filter(run=run).order_by("block"))
    assert [(s.path, s.status, s.attempt) for s in steps] == [
        ("noop", "succeeded", 1),
        ("increment", "succeeded", 1),
        ("double", "succeeded", 1),
        ("increment", "succeeded", 1),
        ("square", "succeeded", 1),
    ]
    # executed by the worker processes, not by this one
    assert not any(s.worker.endswith(f":{os.getpid()}") for s in steps)
    assert all(s.worker for s in steps)


def test_pool__running_steps_never_exceed_max_parallel_across_four_workers(start_workers, recovery_loop, redis_conn):
    start_workers(4, SIMPLE)

    run = finished(flows.wide.start({"value": 7}), timeout=20)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {f"t{i}": {"value": 7} for i in range(20)}
    overlap = [int(n) for n in redis_conn.lrange("test:overlap", 0, -1)]
    assert len(overlap) == 20  # each step ran its body once
    assert max(overlap) <= 3  # the `narrow` pool's max_parallel
    assert max(overlap) == 3  # and the pool was actually used in parallel


@BOTH_CLASSES
def test_pool__slots_handed_from_step_to_step_never_exceed_max_parallel(start_workers, worker_class, redis_conn):
    start_workers(3, worker_class)

    runs = [flows.narrow_chain.start({"value": i}) for i in range(6)]  # 18 steps through 3 `narrow` slots

    for i, run in enumerate(runs):
        run = finished(run, timeout=30)
        assert run.status == RunStatus.SUCCEEDED and run.output == {"value": i}, run.error
    overlap = [int(n) for n in redis_conn.lrange("test:overlap", 0, -1)]
    assert len(overlap) == 18 and max(overlap) <= 3  # each body once; never more than the pool's limit at once
    assert StepRun.objects.filter(pool="narrow", status=StepStatus.SUCCEEDED).count() == 18


@BOTH_CLASSES
def test_cancel__interrupts_the_running_step_within_seconds(start_workers, worker_class, redis_conn):
    start_workers(1, worker_class)
    run = flows.long_flow.start({"value": 60})
    wait_for(
        lambda: step_in(run, "sleeper", StepStatus.RUNNING) and redis_conn.llen("test:started"),
        what="sleeper's body to start",
    )

    run.cancel()

    sleeper = wait_for(lambda: step_in(run, "sleeper", StepStatus.CANCELED), timeout=5, what="sleeper canceled")
    assert sleeper.attempt == 1 and sleeper.error is None  # interrupted by its worker, not lost (WorkerLost)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    assert run.step("increment") is None  # the next step never ran
    assert redis_conn.lrange("test:started", 0, -1) == [b"sleeper"]
    # the interrupted worker is free again: it runs the next run to the end
    assert finished(flows.counter.start({"value": 1})).output == {"value": 3}


def test_timeout__a_step_over_its_timeout_fails_the_run_after_its_retries(start_workers, recovery_loop):
    start_workers(1, FORKING)  # the recovery loop fires the retry's backoff timer

    run = finished(flows.timeout_flow.start({"value": 1}))

    assert run.status == RunStatus.FAILED
    assert run.error["type"] == "StepTimeout" and run.error["step"] == "slow"
    assert attempts(run, "slow") == [(1, "failed", "StepTimeout"), (2, "failed", "StepTimeout")]


def test_worker_killed__the_lease_expires_and_the_step_is_retried_elsewhere(live, redis_conn):
    short_lease = {"WORKFLOWS_LEASE_SECONDS": "2"}
    doomed = live.worker(FORKING, env=short_lease)
    run = worker_flows.long_retry.start({"value": 3})
    wait_for(
        lambda: step_in(run, "resilient_sleeper", StepStatus.RUNNING) and redis_conn.llen("test:started"),
        what="attempt 1's body to start",
    )

    doomed.kill()  # SIGKILL the worker and its work horse: no chance to report anything
    live.worker(FORKING, env=short_lease)
    live.recovery(env=short_lease)

    run = finished(run, timeout=20)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"value": 14}  # 3 + 1 on attempt 2, then + 10
    assert attempts(run, "resilient_sleeper") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    assert redis_conn.lrange("test:started", 0, -1) == [b"resilient_sleeper:1", b"resilient_sleeper:2"]


def test_duplicate_job__the_step_body_runs_once(start_workers, redis_conn):
    run = worker_flows.counted_flow.start({"value": 5})  # no worker yet: its job waits in the queue
    sr = run.step("counted")
    assert sr.status == StepStatus.QUEUED
    dispatch.enqueue(sr.pk, sr.pool)  # the same job id pushed twice more
    dispatch.enqueue(sr.pk, sr.pool)
    queue = dispatch.get_queue(conf.queue_of(sr.pool))
    other = queue.enqueue(dispatch.JOB_FUNC, sr.pk, job_id=f"duplicate-{sr.pk}", result_ttl=600)  # a distinct job

    start_workers(2, SIMPLE)

    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"value": 15}
    wait_for(
        lambda: queue.count == 0 and StartedJobRegistry(queue=queue).count == 0,
        what="every duplicate job to be consumed",
    )
    job = Job.fetch(other.id, connection=queue.connection, serializer=dispatch.JSONSerializer)
    assert job.get_status() == JobStatus.FINISHED  # the duplicate did run, and found nothing to claim
    assert redis_conn.lrange("test:executions", 0, -1) == [f"{run.pk}:counted:1".encode()]
    assert attempts(run, "counted") == [(1, "succeeded", None)]
