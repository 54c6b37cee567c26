"""Retry budgets: a step's own retries pay for its errors; lost workers and shutdowns pay from budgets of their own
(``workflows.engine.budgets``). The arithmetic, then the engine's transitions on real rows, then a shutdown seen
by a step running in this process."""

import time

import pytest

from tests.testapp import flows, worker_flows
from workflows import engine
from workflows.engine.budgets import OWN, charge
from workflows.models import Run, RunEvent, StepRun, StepStatus
from workflows.runtime import jobs, watchdog

LIMITS = {"WORKER_LOST_RETRIES": 3, "SHUTDOWN_RETRIES": 10}
LOST, SHUTDOWN = "WorkerLost", "WorkerShutdown"


def test_budgets__own_errors_spend_the_steps_retries():
    first = charge("ValueError", [], 2, LIMITS)
    assert (first.budget, first.spent, first.allowed, first.retry) == (OWN, 1, 2, True)
    assert charge("ValueError", ["ValueError"], 2, LIMITS).retry
    assert not charge("ValueError", ["ValueError", "StepTimeout"], 2, LIMITS).retry  # the third own failure
    assert not charge("ValueError", [], 0, LIMITS).retry  # retries=0: its own errors are not retried


def test_budgets__lost_workers_and_shutdowns_do_not_spend_the_steps_retries():
    earlier = [LOST, SHUTDOWN, LOST, SHUTDOWN]
    own = charge("ValueError", earlier, 0, LIMITS)
    assert (own.budget, own.spent, own.retry) == (OWN, 1, False)
    assert charge("ValueError", earlier, 1, LIMITS).retry
    lost = charge(LOST, [], 0, LIMITS)
    assert (lost.budget, lost.spent, lost.allowed, lost.retry, lost.infrastructure) == (
        "WORKER_LOST_RETRIES", 1, 3, True, True,
    )  # fmt: skip


def test_budgets__each_infrastructure_budget_is_bounded_and_counted_apart():
    assert charge(LOST, [LOST, LOST], 0, LIMITS).retry  # the third lost attempt: retried
    poison = charge(LOST, ["ValueError", LOST, LOST, LOST], 5, LIMITS)
    assert (poison.spent, poison.retry) == (4, False)  # the fourth: WORKER_LOST_RETRIES spent
    assert charge(SHUTDOWN, [LOST, LOST, LOST], 0, LIMITS).spent == 1  # shutdowns have their own
    assert not charge(SHUTDOWN, [SHUTDOWN] * 10, 0, LIMITS).retry
    assert not charge(LOST, [], 0, {**LIMITS, "WORKER_LOST_RETRIES": 0}).retry


def claim_queued(run: Run, path: str, worker: str) -> StepRun:
    sr = StepRun.objects.get(run=run, path=path, status=StepStatus.QUEUED)
    claimed = engine.claim(sr.pk, worker)
    assert claimed is not None
    return claimed


def test_worker_lost__retries_a_retries_0_step_until_its_budget_then_fails_the_run(engine_db):
    run = worker_flows.slow_flow.start({"value": 1})  # slow: retries=0; no worker runs here
    for attempt in range(1, 5):
        claim_queued(run, "slow", f"host:{attempt}")
        assert engine.worker_lost(f"host:{attempt}", "Work horse died (killed by signal 9, SIGKILL)") == 1
        assert engine.worker_lost(f"host:{attempt}", "again") == 0  # nothing left running under that name

    run.refresh_from_db()
    assert run.status == "failed"
    rows = list(run.steps.filter(path="slow").order_by("attempt"))
    assert [(s.attempt, s.status, s.error["type"]) for s in rows] == [(n, "failed", LOST) for n in range(1, 5)]
    assert "Work horse died (killed by signal 9, SIGKILL) while running slow (attempt 1)" in rows[0].error["message"]
    assert run.error["message"].endswith("(4 such attempts; WORKER_LOST_RETRIES is 3)")
    retries = RunEvent.objects.filter(run=run, kind="step_retrying").order_by("seq")
    assert [(e.data["budget"], e.data["left"], e.data["delay"]) for e in retries] == [
        ("WORKER_LOST_RETRIES", 2, 0), ("WORKER_LOST_RETRIES", 1, 0), ("WORKER_LOST_RETRIES", 0, 0),
    ]  # fmt: skip


def test_hand_back__is_journaled_and_leaves_the_steps_own_retries(engine_db):
    run = flows.failing.start({"value": 3})  # always_fails: retries=1
    sr = claim_queued(run, "always_fails", "host:1")
    assert engine.hand_back(sr, traceback="where it was")
    assert not engine.hand_back(sr)  # a second report of the same attempt changes nothing

    sr = claim_queued(run, "always_fails", "host:2")
    assert engine.fail(sr, ValueError("boom"))  # its own first failure: its one retry
    deadline = time.monotonic() + 10
    while not StepRun.objects.filter(run=run, attempt=3, status=StepStatus.QUEUED).exists():  # after the backoff
        assert time.monotonic() < deadline
        engine.pump()
        time.sleep(0.01)
    sr = claim_queued(run, "always_fails", "host:3")
    assert engine.fail(sr, ValueError("boom again"))

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == {"type": "ValueError", "message": "boom again", "step": "always_fails"}
    rows = list(run.steps.order_by("attempt"))
    assert [s.error["type"] for s in rows] == ["WorkerShutdown", "ValueError", "ValueError"]
    assert rows[0].traceback == "where it was"
    events = list(RunEvent.objects.filter(run=run, step="always_fails").order_by("seq").values_list("kind", "data"))
    kinds = [k for k, _ in events]
    at = kinds.index("step_interrupted")
    assert kinds[at : at + 3] == ["step_interrupted", "step_failed", "step_retrying"]
    assert events[at][1] == {"attempt": 1, "reason": "worker shutdown"}
    assert events[at + 2][1]["budget"] == "SHUTDOWN_RETRIES" and events[at + 2][1]["attempt"] == 2


def test_hand_back__a_step_handed_back_past_shutdown_retries_fails_the_run(engine_db, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "SHUTDOWN_RETRIES": 1}
    run = worker_flows.slow_flow.start({"value": 1})
    for attempt in (1, 2):
        assert engine.hand_back(claim_queued(run, "slow", f"host:{attempt}"))

    run.refresh_from_db()
    assert run.status == "failed"
    assert [s.error["type"] for s in run.steps.filter(path="slow").order_by("attempt")] == [SHUTDOWN, SHUTDOWN]
    assert run.error["message"].endswith("(2 such attempts; SHUTDOWN_RETRIES is 1)")
    assert RunEvent.objects.filter(run=run, kind="step_interrupted").count() == 2


@pytest.fixture
def shutting_down():
    """This process's worker "got SIGTERM": ``shutting_down(grace)``; forgotten after the test."""
    yield watchdog.request_shutdown
    watchdog._shutdown = None


def test_shutdown__a_step_past_the_grace_is_interrupted_and_handed_back(engine_db, shutting_down):
    run = worker_flows.slow_flow.start({"value": 30})
    sr = StepRun.objects.get(run=run, path="slow")
    shutting_down(0.3)
    started = time.monotonic()

    jobs.execute_step(sr.pk)  # the step sleeps 30 s unless interrupted

    assert time.monotonic() - started < 20
    rows = list(run.steps.filter(path="slow").order_by("attempt"))
    assert [(s.status, (s.error or {}).get("type")) for s in rows] == [("failed", SHUTDOWN), ("queued", None)]
    assert "StepInterrupted: shutdown" in rows[0].traceback


def test_shutdown__a_stopping_worker_runs_no_successor_itself(engine_db, shutting_down):
    run = flows.counter.start({"value": 1})  # two fast steps: one job would run both (eager execution)
    first = StepRun.objects.get(run=run, status=StepStatus.QUEUED)
    shutting_down(30)

    jobs.execute_step(first.pk)

    assert [(s.block, s.status) for s in run.steps.order_by("block")] == [(0, "succeeded"), (1, "queued")]
