"""Engine behaviour through real in-process RQ workers (``drain``), a real Redis and a real database."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import flows
from workflows import InvalidInput, InvalidTransition, engine
from workflows.models import Run, RunEvent, StepRun
from workflows.testing import drain


def finished(run: Run, timeout: float = 20) -> Run:
    drain(timeout=timeout)
    run.refresh_from_db()
    return run


def statuses(run: Run) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for sr in run.steps.order_by("block", "path", "attempt"):
        result.setdefault(sr.path, []).append(sr.status)
    return result


def assert_journal_gapless(run: Run) -> list[str]:
    seqs = list(run.events.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, run.last_seq + 1))
    return list(run.events.order_by("seq").values_list("kind", flat=True))


def test_engine__chain_passes_each_output_to_the_next_step(engine_db):
    run = finished(flows.counter.start({"value": 1}))
    assert run.status == "succeeded"
    assert run.output == {"value": 3}
    assert [s.output for s in run.steps.order_by("block")] == [{"value": 2}, {"value": 3}]
    assert run.started_at <= run.finished_at


def test_engine__parallel_map_and_branch_shape_the_data(engine_db):
    run = finished(flows.fan.start({"value": 2}))
    assert run.status == "succeeded", run.error
    assert run.output == {"big": "big 15"}  # (2+1)*2 + (2+1)**2 = 15 > 10
    assert run.step("double").output == {"value": 6} and run.step("square").output == {"value": 9}
    assert run.step("map3").output == {"value": 15}
    assert run.step("small").status == "skipped"


def test_engine__branch_whose_conditions_all_fail_outputs_an_empty_dict(engine_db):
    from workflows import Workflow

    flow = Workflow("no-branch-taken").branch([(lambda c: False, flows.big)]).commit()
    run = finished(flow.start({"value": 1}))
    assert run.status == "succeeded" and run.output == {}


def test_engine__condition_that_raises_fails_the_run_with_its_error(engine_db):
    from workflows import Workflow

    flow = Workflow("bad-condition", input=flows.Num).branch([(lambda c: 1 / 0, flows.big)]).commit()
    run = finished(flow.start({"value": 1}))
    assert run.status == "failed"
    assert run.error == {"type": "ZeroDivisionError", "message": "division by zero", "step": "big"}
    assert "ZeroDivisionError" in run.traceback


def test_start__invalid_input_raises_and_creates_nothing(engine_db):
    with pytest.raises(InvalidInput) as err:
        flows.counter.start({"value": "not a number"})
    assert isinstance(err.value, ValueError)
    assert err.value.errors[0]["loc"] == ["value"]
    assert (Run.objects.count(), StepRun.objects.count(), RunEvent.objects.count()) == (0, 0, 0)


def test_start__idempotency_key_returns_the_same_run(engine_db):
    first = flows.counter.start({"value": 1}, idempotency_key="order-42")
    again = flows.counter.start({"value": 5}, idempotency_key="order-42")
    other = flows.counter.start({"value": 1}, idempotency_key="order-43")
    assert again.pk == first.pk and other.pk != first.pk
    assert Run.objects.count() == 2


def test_start__records_the_user(engine_db, user):
    run = flows.counter.start({"value": 1}, user=user)
    assert run.created_by == user
    assert list(Run.objects.visible_to(user)) == [run]


def test_retry__failed_attempts_are_rows_with_backoff_due_times(engine_db):
    run = finished(flows.flaky_flow.start({"value": 10}))
    assert run.status == "succeeded"
    assert run.output == {"value": 13}  # succeeded on attempt 3
    attempts = list(run.steps.order_by("attempt"))
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert attempts[0].error["type"] == "ConnectionError"
    assert "flaky failure on attempt 1" in attempts[0].traceback
    for previous, retry in zip(attempts, attempts[1:], strict=False):
        assert retry.due_at > previous.finished_at  # the backoff is a due time in the database
    assert run.step("flaky").attempt == 3
    kinds = assert_journal_gapless(run)
    assert kinds.count("step_retrying") == 2


def test_retry__exhausted_retries_fail_the_run_with_the_error(engine_db):
    run = finished(flows.failing.start({"value": 7}))
    assert run.status == "failed"
    assert run.error == {"type": "ValueError", "message": "boom 7", "step": "always_fails"}
    assert statuses(run) == {"always_fails": ["failed", "failed"]}
    assert "boom 7" in run.step("always_fails").traceback


def test_retry__non_retryable_error_fails_at_once(engine_db):
    run = finished(flows.fatal_flow.start({"value": 1}))
    assert run.status == "failed"
    assert run.error["type"] == "NonRetryableError"
    assert statuses(run) == {"fatal": ["failed"]}  # 5 retries allowed, none used; next step never created


def test_timeout__interrupts_the_step_and_counts_as_a_failed_attempt(engine_db):
    run = finished(flows.timeout_flow.start({"value": 1}))
    assert run.status == "failed"
    assert run.error["type"] == "StepTimeout"
    assert statuses(run) == {"slow": ["failed", "failed"]}
    assert all(s.duration < 5 for s in run.steps.all())  # the 30 s sleep was cut short


def test_bail__ends_the_run_successfully_with_its_output(engine_db):
    run = finished(flows.bail_flow.start({"value": 500}))
    assert run.status == "succeeded" and run.output == {"bailed": 500}
    assert run.step("increment") is None
    normal = finished(flows.bail_flow.start({"value": 5}))
    assert normal.output == {"value": 6}


def test_step__output_not_matching_its_type_fails_without_retry(engine_db):
    run = finished(flows.wrong_output_flow.start({"value": 1}))
    assert run.status == "failed"
    assert run.error["type"] == "InvalidInput"
    assert "output of step 'wrong_output'" in run.error["message"]


def test_step__log_progress_and_result_of_an_earlier_step(engine_db):
    run = finished(flows.chatty_flow.start({"value": 4}))
    assert run.output == {"value": 50}
    log = run.events.get(kind="step_log")
    assert (log.step, log.data["message"], log.data["value"]) == ("chatty", "starting", 5)
    assert run.events.get(kind="step_progress").data["fraction"] == 0.5
    assert_journal_gapless(run)


def test_cancel__cancels_pending_and_queued_steps_at_once(engine_db):
    run = flows.wide.start({"value": 1})
    assert {s for attempts in statuses(run).values() for s in attempts} == {"queued", "pending"}
    run.cancel()
    assert run.status == "canceled" and run.finished_at
    assert set(run.steps.values_list("status", flat=True)) == {"canceled"}
    drain(timeout=5)  # the queued jobs find nothing to claim
    assert set(run.steps.values_list("status", flat=True)) == {"canceled"}
    assert_journal_gapless(run)


def test_cancel__a_finished_run_raises_and_changes_nothing(engine_db):
    run = finished(flows.counter.start({"value": 1}))
    seq = run.last_seq
    with pytest.raises(InvalidTransition, match="already succeeded"):
        run.cancel()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.last_seq == seq


def test_pool__never_admits_more_than_its_limit(engine_db):
    run = flows.wide.start({"value": 1})  # 20 parallel steps in pool "narrow" (max_parallel 3)
    counts = {s: run.steps.filter(status=s).count() for s in ("queued", "pending")}
    assert counts == {"queued": 3, "pending": 17}
    assert finished(run).status == "succeeded"


def test_journal__records_every_transition_once_in_order(engine_db):
    run = finished(flows.counter.start({"value": 1}))
    kinds = assert_journal_gapless(run)
    assert kinds == [
        "run_created",
        "step_pending",
        "step_queued",
        "step_running",
        "run_started",
        "step_succeeded",
        "step_queued",  # the first step's pool slot goes straight to the next one (engine.handoff)
        "step_running",  # claimed in the same transaction by the worker that ran the first
        "step_succeeded",
        "run_succeeded",
    ]


def test_transitions__a_late_completion_or_a_duplicate_claim_changes_nothing(engine_db):
    run = finished(flows.counter.start({"value": 1}))
    sr = run.step("increment")
    seq = run.last_seq
    assert engine.claim(sr.pk, "late-worker") is None
    assert engine.complete(sr, {"value": 999}) is False
    assert engine.fail(sr, RuntimeError("late")) is False
    run.refresh_from_db()
    sr.refresh_from_db()
    assert (run.last_seq, run.output, sr.output) == (seq, {"value": 3}, {"value": 3})


def test_version__a_run_whose_version_is_gone_fails_clearly(engine_db):
    run = flows.counter.start({"value": 1})
    Run.objects.filter(pk=run.pk).update(version="0000000000000000")
    run = finished(run)
    assert run.status == "failed"
    assert run.error["type"] == "WorkflowVersionError"


def test_wait__returns_the_refreshed_run_or_times_out(engine_db):
    run = flows.counter.start({"value": 1})
    with pytest.raises(TimeoutError):
        run.wait(timeout=0.2)
    drain()
    assert run.wait(timeout=1).status == "succeeded"


def test_drain__raises_when_work_is_left_after_its_timeout(engine_db):
    flows.long_flow.start({"value": 1})
    with pytest.raises(TimeoutError):
        drain(timeout=0.3)
    drain(timeout=10)


def test_transition__query_count_does_not_grow_with_run_length(engine_db):
    run = flows.counter.start({"value": 1})
    drain()
    sr = run.step("increment")
    with CaptureQueriesContext(connection) as ctx:
        engine.complete(sr, {"value": 1})  # ignored: already succeeded, one lock + one update
    assert len(ctx.captured_queries) <= 4


def test_start__works_after_its_workflow_row_was_deleted(engine_db):
    from workflows.models import Workflow as WorkflowRow

    first = finished(flows.counter.start({"value": 1}))
    Run.objects.all().delete()
    WorkflowRow.objects.filter(name="counter").delete()  # a flushed test database, or a row deleted in the admin
    second = finished(flows.counter.start({"value": 5}))
    assert second.status == "succeeded" and second.output == {"value": 7}
    assert second.workflow_id != first.workflow_id and WorkflowRow.objects.get(name="counter").version
