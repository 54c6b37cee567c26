"""A process dies at an exact line (``workflows.faults``) or is SIGKILLed; the run still finishes right.

Each test checks the output, the executions the steps recorded (a step body runs again only when a process
died while it ran or before its completion committed) and the journal: gapless, every transition once.
"""

from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from django.utils import timezone

from tests import invariants
from tests.testapp import chaos_flows
from tests.testapp.models import StepExecution
from workflows import engine, faults
from workflows.models import Run, RunEvent, RunStatus, StepRun, StepStatus

from .conftest import FAST, FORKING, SIMPLE, attempts, finished, wait_for

pytestmark = pytest.mark.integration
BOTH_CLASSES = pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])


def crash_env(point: str, tmp_path) -> dict[str, str]:
    """Die at ``point``, once: the first process to get there creates ``crashed`` and exits 137."""
    return {**FAST, "WORKFLOWS_CRASH_AT": point, "WORKFLOWS_CRASH_ONCE": str(tmp_path / "crashed")}


def assert_clean(*runs: Run) -> None:
    assert invariants.check(r.pk for r in runs).problems() == []


def crashed(proc, tmp_path) -> None:
    wait_for((tmp_path / "crashed").exists, what="the crash")
    assert proc.popen.wait(10) == faults.EXIT_CODE


ONE_EACH = {"rec_add_one": [1], "rec_double": [1], "rec_add_three": [1]}
AGAIN = {**ONE_EACH, "rec_add_one": [1, 2]}
HANDED = {**ONE_EACH, "rec_double": [2]}  # its attempt 1, claimed by the dead worker, never began: WorkerLost


@BOTH_CLASSES
@pytest.mark.parametrize(
    "point, executed",
    [
        ("mid_step", AGAIN),  # inside the step body (tests/testapp/chaos_flows.record)
        ("step_returned", AGAIN),  # jobs: the function returned, engine.complete not called
        ("complete_before_commit", AGAIN),  # engine.complete: everything written, not committed
        ("handed_over", HANDED),  # jobs: the next step claimed for this worker and committed, not started
        ("before_enqueue", ONE_EACH),  # dispatch: the next step queued and committed, its RQ job not made
    ],
)
def test_crash__a_worker_dying_at_a_crash_point_loses_nothing(live, tmp_path, worker_class, point, executed):
    env = crash_env(point, tmp_path)
    if point == "before_enqueue":  # a worker enqueues a next step only when it does not run it itself
        env["WORKFLOWS_EAGER_SECONDS"] = "0"
    doomed = live.worker(worker_class, env=env)
    live.recovery(env=FAST)

    run = chaos_flows.crash_chain.start({"value": 1})

    wait_for((tmp_path / "crashed").exists, what=f"a crash at {point}")
    if worker_class == SIMPLE:  # the whole worker died with the step; another one takes over
        assert doomed.popen.wait(10) == faults.EXIT_CODE
        live.worker(SIMPLE, env=FAST)
    # a forking worker lost only its work horse, and carries on
    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == {"value": chaos_flows.expected_chain(1), "pause": 0.0}
    assert invariants.executions(run.pk) == executed
    if executed["rec_add_one"] == [1, 2]:  # the lease of attempt 1 expired: a retry of type WorkerLost
        assert attempts(run, "rec_add_one") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    else:
        assert attempts(run, "rec_add_one") == [(1, "succeeded", None)]
    if executed["rec_double"] == [2]:
        assert attempts(run, "rec_double") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    assert_clean(run)


def test_crash__recovery_dying_while_expiring_a_killed_workers_lease(live, tmp_path):
    worker = live.worker(SIMPLE, env=FAST)
    run = chaos_flows.crash_chain.start({"value": 2, "pause": 0.8})
    wait_for(lambda: StepExecution.objects.filter(run_id=run.pk).exists(), what="the first step's body")

    worker.kill()  # SIGKILL mid-step
    doomed = live.recovery(env=crash_env("lease_expired_before_commit", tmp_path))
    crashed(doomed, tmp_path)
    live.recovery(env=FAST)
    live.worker(SIMPLE, env=FAST)

    run = finished(run)
    assert run.output == {"value": chaos_flows.expected_chain(2), "pause": 0.8}
    assert invariants.executions(run.pk) == AGAIN
    assert attempts(run, "rec_add_one") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    assert_clean(run)


def test_crash__processes_killed_during_a_retry_backoff(live, tmp_path):
    worker = live.worker(SIMPLE, env=FAST)
    run = chaos_flows.crash_retry.start({"value": 3})
    wait_for(
        lambda: RunEvent.objects.filter(run=run, kind="step_retrying", step="rec_flaky").exists(),
        what="rec_flaky's retry to be scheduled",
    )

    worker.kill()  # nothing runs during the backoff: only the database remembers the retry
    doomed = live.recovery(env=crash_env("admit_before_commit", tmp_path))  # dies admitting the due retry
    crashed(doomed, tmp_path)
    live.recovery(env=FAST)
    live.worker(SIMPLE, env=FAST)

    run = finished(run)
    assert run.output == {"value": chaos_flows.expected_retry(3), "pause": 0.0}
    assert invariants.executions(run.pk) == {"rec_add_one": [1], "rec_flaky": [1, 2], "rec_double": [1]}
    assert attempts(run, "rec_flaky") == [(1, "failed", "ConnectionError"), (2, "succeeded", None)]
    assert_clean(run)


def test_crash__processes_killed_during_a_sleep(live, tmp_path):
    worker = live.worker(SIMPLE, env=FAST)
    run = chaos_flows.crash_sleep.start({"value": 4})
    wait_for(lambda: run.step("sleep2") and run.step("sleep2").status == StepStatus.WAITING, what="the sleep")

    worker.kill()
    doomed = live.recovery(env=crash_env("fire_timer_before_commit", tmp_path))  # dies ending the sleep
    crashed(doomed, tmp_path)
    live.recovery(env=FAST)
    live.worker(SIMPLE, env=FAST)

    run = finished(run)
    assert run.output == {"value": chaos_flows.expected_sleep(4), "pause": 0.0}
    assert invariants.executions(run.pk) == {"rec_add_one": [1], "rec_double": [1]}
    assert RunEvent.objects.filter(run=run, kind="step_succeeded", step="sleep2").count() == 1
    assert_clean(run)


@BOTH_CLASSES
def test_lease__a_step_longer_than_its_lease_keeps_it(live, worker_class):
    short = {"WORKFLOWS_LEASE_SECONDS": "0.6"}
    live.worker(worker_class, env=short)
    live.recovery(env=short)

    run = finished(chaos_flows.crash_chain.start({"value": 5, "pause": 1.5}))  # each step: 2.5 leases long

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert invariants.executions(run.pk) == ONE_EACH
    assert all(s.attempt == 1 for s in run.steps.all())
    assert_clean(run)


def _recovery_totals(logs: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for text in logs:
        for match in re.finditer(r"recovery: (\{.*?\})", text):
            for key, n in ast.literal_eval(match[1]).items():
                totals[key] = totals.get(key, 0) + n
    return totals


def test_recovery__three_loops_at_once_do_nothing_twice(live, redis_conn):
    env = {"WORKFLOWS_REQUEUE_AFTER_SECONDS": "3", "WORKFLOWS_LEASE_SECONDS": "1.5"}
    loops = [live.recovery(env=env) for _ in range(3)]
    wait_for(lambda: all("recovery loop started" in p.output() for p in loops), 30, what="three recovery loops")

    naps = [chaos_flows.crash_nap.start({"value": i}) for i in range(8)]  # timers due in 1 s
    lost_leases = [chaos_flows.crash_chain.start({"value": i}) for i in range(8)]
    soon = timezone.now() + timedelta(seconds=1)
    for run in lost_leases:  # claimed by a worker that died at once: leases end in 1 s
        # queued by the start, or (a loop holding the pool's lock then) by a loop's admission a tick later
        wait_for(lambda r=run: r.steps.filter(status=StepStatus.QUEUED).exists(), 30, what="the first step queued")
        sr = run.steps.get(status=StepStatus.QUEUED)
        engine.claim(sr.pk, "dead-host:1")
        StepRun.objects.filter(pk=sr.pk).update(lease_expires_at=soon)
    lost_jobs = [chaos_flows.crash_chain.start({"value": i}) for i in range(8)]
    redis_conn.flushdb()  # every RQ job lost (Redis restarted empty): the loops re-enqueue them after 3 s
    live.workers(2, SIMPLE)

    runs = [finished(r) for r in lost_leases + lost_jobs + naps]

    assert all(r.status == RunStatus.SUCCEEDED for r in runs)
    assert all(r.output["value"] == chaos_flows.expected_chain(r.input["value"]) for r in lost_leases + lost_jobs)
    assert_clean(*runs)
    for run in lost_leases:  # attempt 1 never ran: its worker was gone
        assert invariants.executions(run.pk) == {**ONE_EACH, "rec_add_one": [2]}
        assert attempts(run, "rec_add_one") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    for run in lost_jobs + naps:
        assert all(v == [1] for v in invariants.executions(run.pk).values())
    logs = [p.output() for p in loops]
    totals = _recovery_totals(logs)
    assert totals["expired"] == 8 and totals["timers"] == 8
    requeued = re.findall(r"^(\S+ \S+) INFO \S+ re-enqueuing step run (\d+)", "\n".join(logs), re.M)
    # at least one of the 2 queued at the flush (10 slots - 8), whose admission a loop may have made after the
    # flush under load (then its job was never lost). Never two loops at once: a step is re-enqueued again only
    # REQUEUE_AFTER_SECONDS (3 s) later, if its new job is missing then too (seen under load, 2 runs in 5 on
    # PostgreSQL), and no step ran twice (above)
    assert len(requeued) == totals["requeued"] >= 1
    times: dict[str, list[datetime]] = {}
    for at, sr_id in requeued:
        times.setdefault(sr_id, []).append(datetime.strptime(at, "%Y-%m-%d %H:%M:%S,%f"))
    for sr_id, ats in times.items():
        ats.sort()
        # (3 s between the marks; each line is logged a moment after its mark)
        assert all(b - a >= timedelta(seconds=2.5) for a, b in pairwise(ats)), (sr_id, ats)
