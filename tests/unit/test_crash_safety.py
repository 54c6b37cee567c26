"""Pieces of crash safety that need no worker processes: crash points, idempotency keys, retried transitions,
the invariant checker, and recovery skipping runs another process holds (PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from tests import invariants
from tests.testapp import chaos_flows
from tests.testapp.models import StepExecution
from workflows import engine, faults
from workflows.models import Run, RunEvent, StepRun, StepStatus
from workflows.runtime import recovery, retrying
from workflows.testing import drain


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=30
    )


POINT = "from workflows import faults; faults.point('a'); faults.point('b'); print('survived')"


def test_faults__point_exits_137_only_at_the_configured_name():
    assert run_python(POINT).stdout.strip() == "survived"
    assert run_python(POINT, WORKFLOWS_CRASH_AT="c").stdout.strip() == "survived"
    died = run_python(POINT, WORKFLOWS_CRASH_AT="b")
    assert died.returncode == faults.EXIT_CODE and died.stdout == ""


def test_faults__with_a_once_file_only_the_first_process_crashes(tmp_path):
    once = str(tmp_path / "crashed")
    assert run_python(POINT, WORKFLOWS_CRASH_AT="a", WORKFLOWS_CRASH_ONCE=once).returncode == faults.EXIT_CODE
    assert run_python(POINT, WORKFLOWS_CRASH_AT="a", WORKFLOWS_CRASH_ONCE=once).stdout.strip() == "survived"


def test_idempotency_key__same_on_every_attempt_distinct_per_step_and_run(engine_db):
    first = chaos_flows.crash_retry.start({"value": 1})
    second = chaos_flows.crash_retry.start({"value": 1})
    drain()

    keys = {}
    for e in StepExecution.objects.order_by("id"):
        keys.setdefault((e.run_id, e.path), set()).add(e.key)
    assert StepExecution.objects.filter(run_id=first.pk, path="rec_flaky").count() == 2  # attempts 1 and 2
    assert all(len(k) == 1 for k in keys.values())  # the same key on every attempt
    assert keys[(first.pk, "rec_flaky")] == {f"wf:{first.pk}:1:rec_flaky"}
    assert len({k for ks in keys.values() for k in ks}) == 6  # 3 steps x 2 runs, all distinct
    assert keys[(second.pk, "rec_flaky")] != keys[(first.pk, "rec_flaky")]


def test_idempotency_key_for__names_one_side_effect():
    from workflows import StepContext

    ctx = StepContext(run_id=7, step_id="charge", path="charge[2]", attempt=3, run_input=None, block=4)
    assert ctx.idempotency_key == "wf:7:4:charge[2]"
    assert ctx.idempotency_key_for("email") == "wf:7:4:charge[2]:email"


def test_chaos_flow__output_and_clean_journal_in_process(engine_db):
    runs = [chaos_flows.chaos.start({"value": v}) for v in (1, 2)]
    drain()

    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded", run.error
        assert run.output == chaos_flows.expected_chaos(run.input["value"])
    report = invariants.check(r.pk for r in runs)
    assert report.problems() == []
    assert report.paths == 2 * len(chaos_flows.CHAOS_PATHS)
    assert report.planned_failures == sum(chaos_flows.planned_failures_chaos(v) for v in (1, 2)) > 0
    assert report.extra_executions == 0


def test_invariants__detect_a_gap_a_double_transition_and_a_double_execution(engine_db):
    run = chaos_flows.crash_chain.start({"value": 1})
    drain()
    assert invariants.check([run.pk]).problems() == []

    ok = RunEvent.objects.get(run=run, kind="step_succeeded", step="rec_double")
    RunEvent.objects.create(run=run, seq=run.events.count() + 5, kind="step_succeeded", step="rec_double", data=ok.data)
    StepExecution.objects.create(run_id=run.pk, path="rec_double", attempt=1, key="k", pid=1)

    report = invariants.check([run.pk])
    assert report.gaps == [run.pk]
    assert report.doubles == [(run.pk, "step_succeeded", "rec_double", 1, 2, 1)]
    assert report.same_attempt_twice == [(run.pk, "rec_double", 1, 2)]
    assert report.extra_executions == 1


def test_db_retrying__calls_again_after_a_connection_error(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "RECONNECT_SECONDS": 5}
    calls = []

    def flaky_transition(x):
        calls.append(x)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return x * 2

    assert retrying.retrying(flaky_transition, 21) == 42
    assert calls == [21, 21, 21]


def test_db_retrying__gives_up_after_reconnect_seconds(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "RECONNECT_SECONDS": 0.2}

    def down():
        raise OperationalError("the database system is starting up")

    with pytest.raises(OperationalError):
        retrying.retrying(down)


def test_db_retrying__other_errors_are_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        retrying.retrying(broken)
    assert calls == [1]


def _expire(run: Run) -> StepRun:
    """Claim the run's queued step for a worker that then vanishes: its lease is already over."""
    sr = run.steps.get(status=StepStatus.QUEUED)
    engine.claim(sr.pk, "gone:1")
    StepRun.objects.filter(pk=sr.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    return sr


def test_recovery__expired_lease_becomes_a_worker_lost_retry_once(engine_db):
    run = chaos_flows.crash_chain.start({"value": 1})
    sr = _expire(run)

    assert recovery.expire_leases() == 1
    assert recovery.expire_leases() == 0  # done: nothing twice

    sr.refresh_from_db()
    assert sr.status == StepStatus.FAILED and sr.error["type"] == "WorkerLost"
    assert run.step("rec_add_one").attempt == 2
    drain()
    run.refresh_from_db()
    assert run.output == {"value": chaos_flows.expected_chain(1), "pause": 0.0}
    assert invariants.check([run.pk]).problems() == []


def test_recovery__skips_a_run_another_process_holds_locked_on_postgresql(engine_db):
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises all writers anyway")
    busy, free = chaos_flows.crash_chain.start({"value": 1}), chaos_flows.crash_chain.start({"value": 2})
    _expire(busy), _expire(free)
    locked, release = threading.Event(), threading.Event()

    def hold_the_run_lock():
        try:
            with transaction.atomic():
                list(Run.objects.select_for_update().filter(pk=busy.pk).values_list("pk"))
                locked.set()
                release.wait(10)
        finally:
            connections["default"].close()

    holder = threading.Thread(target=hold_the_run_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert recovery.expire_leases() == 1  # did not wait for the lock: moved the other run on
        assert busy.step("rec_add_one").attempt == 1 and free.step("rec_add_one").attempt == 2
    finally:
        release.set()
        holder.join()
    assert recovery.expire_leases() == 1  # the next tick takes the run that was busy
    assert busy.step("rec_add_one").attempt == 2
