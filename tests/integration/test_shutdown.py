"""Deploys, restarts and crashes never fail a run that would otherwise succeed (every step here has retries=0).

- SIGTERM: the worker stops taking jobs; its running step finishes within SHUTDOWN_GRACE_SECONDS, or is
  interrupted after it and handed back (a ``WorkerShutdown`` attempt, ``step_interrupted`` in the journal), and runs
  again at once on another worker, its retries untouched. In both worker modes.
- SIGKILL, or a work horse that dies: ``WorkerLost``, retried on the WORKER_LOST_RETRIES budget; a step that kills
  its worker every time still fails once that budget is spent. A forking worker reports a dead horse at once.

Timings are never asserted exactly: the tests wait for outcomes with generous deadlines, and check the order of
recorded times only where a delay can only make them further apart.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import invariants
from tests.testapp import worker_flows
from workflows.devserver.processes import descendants
from workflows.models import Run, RunEvent, RunStatus, StepRun, StepStatus

from .conftest import FAST, FORKING, SIMPLE, attempts, finished, wait_for

pytestmark = pytest.mark.integration
BOTH_CLASSES = pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])


def started(redis_conn, key: str) -> list[tuple[int, int]]:
    """(attempt, pid) of each execution a test step recorded under ``key``."""
    return [tuple(int(x) for x in v.decode().split(":")) for v in redis_conn.lrange(key, 0, -1)]


def running(run: Run, redis_conn, attempt: int = 1) -> StepRun:
    """Wait until the ``slow`` step's ``attempt`` is running and its body has begun."""
    wait_for(lambda: any(a == attempt for a, _ in started(redis_conn, "test:slow")), 60, what="the slow step")
    return StepRun.objects.get(run=run, path="slow", attempt=attempt, status=StepStatus.RUNNING)


def exited(proc, timeout: float = 60) -> int:
    try:
        return proc.popen.wait(timeout)
    except Exception:
        pytest.fail(f"{proc.name} still running {timeout}s after SIGTERM:\n{proc.output()}")


def assert_clean(*runs: Run) -> None:
    assert invariants.check(r.pk for r in runs).problems() == []


@BOTH_CLASSES
def test_sigterm__a_step_shorter_than_the_grace_finishes_and_the_worker_takes_no_more(live, redis_conn, worker_class):
    first = live.worker(worker_class)  # SHUTDOWN_GRACE_SECONDS: 30 (the tests' default)
    run = worker_flows.slow_flow.start({"value": 3})
    attempt = running(run, redis_conn)

    os.kill(first.pid, signal.SIGTERM)  # to the worker process only, as Kubernetes and `manage.py up` do

    assert exited(first) == 0
    slow = StepRun.objects.get(pk=attempt.pk)
    assert (slow.status, slow.output) == (StepStatus.SUCCEEDED, {"value": 4})
    # a stopping worker ran no successor itself and took no job: add_ten waits for the next worker
    assert run.step("add_ten").status == StepStatus.QUEUED
    assert "shutting down; the running step has 30s to finish" in first.output()
    second = live.worker(worker_class)

    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"value": 14}
    assert attempts(run, "slow") == [(1, "succeeded", None)]
    assert run.step("add_ten").worker != slow.worker
    if worker_class == SIMPLE:
        assert slow.worker.endswith(f":{first.pid}") and run.step("add_ten").worker.endswith(f":{second.pid}")
    assert not RunEvent.objects.filter(run=run, kind="step_interrupted").exists()
    assert_clean(run)


def _sigterm_family(proc) -> None:
    """SIGTERM the worker and every descendant at once, as systemd's control-group kill does (work horse included)."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize(
    "worker_class, signal_all",
    [(FORKING, False), (FORKING, True), (SIMPLE, False)],
    ids=["forking", "forking-systemd", "simple"],
)
def test_sigterm__a_step_longer_than_the_grace_is_handed_back_and_finishes_elsewhere(
    live, redis_conn, worker_class, signal_all
):
    grace = 1.0
    first = live.worker(worker_class, env={"WORKFLOWS_SHUTDOWN_GRACE_SECONDS": str(grace)})
    run = worker_flows.slow_flow.start({"value": 6})
    attempt = running(run, redis_conn)

    signalled_at = timezone.now()
    if signal_all:
        _sigterm_family(first)
    else:
        os.kill(first.pid, signal.SIGTERM)

    assert exited(first) == 0  # the worker stopped after handing the step back, without waiting for its end
    # (read once the attempt has left RUNNING: seen once on PostgreSQL under load, the row still RUNNING just as
    # the forking worker's parent exited; what matters is that it is handed back as WorkerShutdown, below)
    wait_for(lambda: StepRun.objects.get(pk=attempt.pk).status != StepStatus.RUNNING, 60, what="the hand-back")
    interrupted = StepRun.objects.get(pk=attempt.pk)
    assert (interrupted.status, interrupted.error["type"]) == (StepStatus.FAILED, "WorkerShutdown")
    assert interrupted.finished_at >= signalled_at + timedelta(seconds=grace * 0.9)  # it had its grace
    assert "StepInterrupted: shutdown" in interrupted.traceback
    second = live.worker(worker_class)

    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"value": 17}
    assert attempts(run, "slow") == [(1, "failed", "WorkerShutdown"), (2, "succeeded", None)]  # retries=0
    assert [a for a, _ in started(redis_conn, "test:slow")] == [1, 2]
    assert run.step("slow").worker != interrupted.worker
    if worker_class == SIMPLE:
        assert run.step("slow").worker.endswith(f":{second.pid}")
    events = {e.kind: e.data for e in RunEvent.objects.filter(run=run, step="slow", data__attempt__in=[1, 2])}
    assert events["step_interrupted"] == {"attempt": 1, "reason": "worker shutdown"}
    assert events["step_failed"]["error"]["type"] == "WorkerShutdown"
    kinds = list(RunEvent.objects.filter(run=run, step="slow").order_by("seq").values_list("kind", flat=True))
    assert kinds[kinds.index("step_interrupted") :][:3] == ["step_interrupted", "step_failed", "step_retrying"]
    retry = RunEvent.objects.get(run=run, step="slow", kind="step_retrying").data
    assert (retry["budget"], retry["left"], retry["delay"]) == ("SHUTDOWN_RETRIES", 9, 0)
    assert_clean(run)


@BOTH_CLASSES
def test_sigkill__a_lost_worker_is_retried_without_using_the_steps_retries(live, redis_conn, worker_class):
    doomed = live.worker(worker_class, env=FAST)
    live.recovery(env=FAST)
    run = worker_flows.slow_flow.start({"value": 2})
    running(run, redis_conn)

    doomed.kill()  # SIGKILL, the work horse too: nothing reports; the lease expires
    live.worker(worker_class, env=FAST)

    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert attempts(run, "slow") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    retry = RunEvent.objects.get(run=run, step="slow", kind="step_retrying").data
    assert (retry["budget"], retry["left"]) == ("WORKER_LOST_RETRIES", 2)
    assert_clean(run)


@BOTH_CLASSES
def test_poison_pill__a_step_that_kills_its_worker_every_time_fails_after_its_budget(live, redis_conn, worker_class):
    budget = 3 if worker_class == FORKING else 1  # each SimpleWorker attempt costs a new worker and a lease
    env = {**FAST, "WORKFLOWS_WORKER_LOST_RETRIES": str(budget)}
    live.recovery(env=env)
    workers = [live.worker(worker_class, env=env)]  # ready before the pill exists: it may kill its worker at once
    run = worker_flows.poison_flow.start({"value": 1})
    deadline = time.monotonic() + 120
    while Run.objects.get(pk=run.pk).status not in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED):
        assert time.monotonic() < deadline, f"run still going: {attempts(run, 'poison_pill')}"
        if workers[-1].popen.poll() is not None:  # a SimpleWorker dies with the step: a supervisor restarts it
            workers.append(live.worker(worker_class, env=env, ready=False))
        time.sleep(0.1)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert attempts(run, "poison_pill") == [(n, "failed", "WorkerLost") for n in range(1, budget + 2)]
    assert len(started(redis_conn, "test:poison")) == budget + 1
    assert run.error["type"] == "WorkerLost"
    assert f"{budget + 1} such attempts; WORKER_LOST_RETRIES is {budget}" in run.error["message"]
    if worker_class == FORKING:  # its horses died, the worker lived on and reported each at once
        assert len(workers) == 1 and workers[0].popen.poll() is None
        assert all("Work horse" in s.error["message"] for s in run.steps.all())
    assert_clean(run)


def test_dead_horse__is_reported_at_once_not_after_its_lease(live, redis_conn):
    lease = 60.0
    worker = live.worker(FORKING, env={"WORKFLOWS_LEASE_SECONDS": str(lease)})  # and no recovery loop at all
    run = worker_flows.dies_once_flow.start({"value": 1})

    run = finished(run, timeout=lease / 2)  # generous, yet well before a lease could expire

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert attempts(run, "dies_once") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    lost = run.steps.get(attempt=1)
    assert lost.finished_at < lost.lease_expires_at  # failed by the worker, not by an expired lease
    assert "died (exit status 3)" in lost.error["message"]
    assert worker.popen.poll() is None  # the worker itself carries on
    retried = run.steps.get(attempt=2)
    print(
        f"dead horse: attempt 1 failed {(lost.finished_at - lost.started_at).total_seconds():.3f}s after it started; "
        f"attempt 2 started {(retried.started_at - lost.finished_at).total_seconds():.3f}s after that "
        f"(LEASE_SECONDS {lease:g})"
    )
    assert_clean(run)
