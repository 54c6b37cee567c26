"""Loops, foreach, nested workflows, timers, events, suspend/resume, state, restart and versions (via drain)."""

import threading
import time

import pytest
from django.db import connection

from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows import InvalidInput, InvalidTransition, Workflow, WorkflowDefinitionError
from workflows.definition import registry
from workflows.models import InboundEvent, Run, StepRun
from workflows.testing import drain

from .test_engine import assert_journal_gapless, finished


def paths(run: Run) -> list[str]:
    return list(run.steps.order_by("pk").values_list("path", flat=True))


# --- loops ---------------------------------------------------------------------------------------------------


def test_dowhile__runs_while_the_condition_holds_each_iteration_a_step_run(engine_db):
    run = finished(cf.count_while.start({"value": 1}))
    assert run.status == "succeeded" and run.output == {"value": 5}
    assert paths(run) == ["add_iteration#1", "add_iteration#2", "add_iteration#3", "add_iteration#4"]
    assert run.step("add_iteration#3").output == {"value": 4}
    assert "step_succeeded" in assert_journal_gapless(run)


def test_dountil__body_runs_at_least_once(engine_db):
    run = finished(cf.count_until.start({"value": 99}))
    assert run.output == {"value": 100}
    assert paths(run) == ["add_iteration#1"]


def test_loop__iteration_counts_from_one(engine_db):
    run = finished(cf.iteration_seen.start({"value": 0}))
    assert run.output == {"value": 3}  # iterations 1, 2, 3; stops when c.iteration == 3


def test_loop__max_iterations_fails_the_run_clearly(engine_db):
    run = finished(cf.runaway.start({"value": 0}))
    assert run.status == "failed"
    assert run.error["type"] == "LoopLimitExceeded"
    assert "max_iterations=4" in run.error["message"]
    assert run.steps.count() == 4


# --- foreach -------------------------------------------------------------------------------------------------


def test_foreach__list_in_list_out_in_order_within_concurrency(engine_db, redis_conn):
    items = [3, 1, 4, 1, 5, 9, 2, 6, 7]
    run = finished(cf.squares.start(items))
    assert run.status == "succeeded", run.error
    assert run.output == [n * n for n in items]
    assert run.step("square_item[8]").output == 49
    assert run.steps.filter(path="square_item[7]").count() == 1
    overlap = [int(x) for x in redis_conn.lrange("test:foreach:overlap", 0, -1)]
    assert max(overlap) <= 2  # concurrency=2 (the pool allows 3)
    progress = list(run.events.filter(kind="foreach_progress").values_list("data", flat=True))
    assert progress[0] == {"completed": 0, "total": 9} and progress[-1] == {"completed": 9, "total": 9}


def test_foreach__a_retried_item_does_not_break_the_order(engine_db):
    run = finished(cf.squares.start([7, 2]))  # item 7 fails once, then succeeds
    assert run.output == [49, 4]
    assert list(run.steps.filter(path="square_item[0]").values_list("status", flat=True)) == ["failed", "succeeded"]


def test_foreach__empty_list_gives_empty_list(engine_db):
    run = finished(cf.squares_sum.start([]))
    assert run.status == "succeeded" and run.output == {"total": 0}


def test_foreach__a_failed_item_fails_the_block_and_cancels_items_not_started(engine_db, settings):
    # one in-process worker would otherwise run item 1's successors back to back before item 0's retry
    settings.WORKFLOWS = {**settings.WORKFLOWS, "EAGER_SECONDS": 0}
    run = finished(cf.squares.start([1, -1, 2, 3, 4, 5]))
    assert run.status == "failed"
    assert run.error["step"] == "square_item[1]" and "negative item -1" in run.error["message"]
    assert run.steps.filter(status="canceled").exists()
    assert not run.steps.filter(path="square_item[5]", status="succeeded").exists()


def test_foreach__input_that_is_not_a_list_fails_clearly(engine_db):
    run = finished(cf.foreach_not_list.start({"value": 1}))
    assert run.status == "failed"
    assert run.error["type"] == "InvalidInput" and "expects a list, got dict" in run.error["message"]


# --- nested workflows ----------------------------------------------------------------------------------------


def test_nested__three_levels_deep_output_flows_back_up(engine_db):
    run = finished(cf.parent.start({"value": 1}))
    assert run.status == "succeeded", run.error
    assert run.output == {"value": 4}  # child: +1, grandchild: +1; parent: +1
    child = run.step("child").child_runs.get()
    grandchild = child.step("grandchild").child_runs.get()
    assert (child.status, grandchild.status) == ("succeeded", "succeeded")
    assert grandchild.output == {"value": 3} and run.step("child").output == {"value": 3}


def test_nested__inside_parallel_and_foreach(engine_db):
    run = finished(cf.nested_parallel.start({"value": 1}))
    assert run.output == {"grandchild": {"value": 2}, "add_iteration": {"value": 2}}
    run = finished(cf.nested_foreach.start([{"value": 1}, {"value": 10}, {"value": 20}]))
    assert run.output == [{"value": 2}, {"value": 11}, {"value": 21}]
    assert Run.objects.filter(parent_step__run=run).count() == 3


def test_nested__child_failure_fails_the_parent_step_with_the_childs_error(engine_db):
    run = finished(cf.parent_of_failing.start({"value": 1}))
    assert run.status == "failed"
    assert run.error == {"type": "RuntimeError", "message": "child exploded", "step": "failing-child.explode"}
    assert run.step("failing-child").status == "failed"


def test_nested__cancelling_the_parent_cancels_its_children(engine_db):
    run = cf.parent.start({"value": 1})
    child = run.step("child").child_runs.get()
    run.cancel()
    child.refresh_from_db()
    assert (run.status, child.status) == ("canceled", "canceled")
    drain()
    assert not StepRun.objects.filter(status="succeeded").exists()


def test_nesting__requires_a_committed_workflow():
    with pytest.raises(WorkflowDefinitionError, match="must be committed"):
        Workflow("nests-uncommitted").then(Workflow("never-committed").then(flows.increment))


# --- durable timers ------------------------------------------------------------------------------------------


def test_sleep__run_waits_in_the_database_then_continues(engine_db):
    run = cf.napping.start({"value": 1})
    assert run.status == "waiting"
    timer = run.step("sleep1")
    assert timer.status == "waiting" and timer.due_at > timer.created_at
    run = finished(run)
    assert run.status == "succeeded" and run.output == {"value": 2}
    assert run.step("increment").started_at >= timer.due_at


def test_sleep__duration_from_a_function_and_sleep_until(engine_db):
    assert finished(cf.napping_fn.start({"value": 2})).output == {"value": 3}
    assert finished(cf.until_nap.start({"value": 5})).output == {"value": 6}


def test_sleep__drain_leaves_later_timers_and_cancel_ends_the_run(engine_db):
    run = cf.long_nap.start({"value": 1})
    drain(timeout=0.5)  # returns: only a later timer remains
    run.refresh_from_db()
    assert run.status == "waiting"
    run.cancel()
    assert run.status == "canceled" and run.step("sleep1").status == "canceled"
    StepRun.objects.filter(pk=run.step("sleep1").pk).update(due_at=run.created_at)  # even if it falls due now
    drain()
    assert run.step("increment") is None


# --- events --------------------------------------------------------------------------------------------------


def test_event__payload_is_validated_and_becomes_the_output(engine_db):
    run = cf.approval.start({"value": 1})
    drain()
    run.refresh_from_db()
    assert run.status == "waiting"
    seq = run.last_seq
    with pytest.raises(InvalidInput):
        run.send_event("approved", {"approved": "maybe"})
    run.refresh_from_db()
    assert run.last_seq == seq and not InboundEvent.objects.exists()
    run.send_event("approved", {"approved": True, "by": "ana"})
    run = finished(run)
    assert run.status == "succeeded" and run.output == {"by": "ana", "ok": True}


def test_event__sent_before_the_block_is_kept_and_consumed(engine_db):
    run = cf.approval.start({"value": 1})
    run.send_event("approved", {"approved": False, "by": "bo"})  # the run is still at its first step
    run = finished(run)
    assert run.output == {"by": "bo", "ok": False}
    assert InboundEvent.objects.get().consumed_by == run.step("approved")


def test_event__unknown_name_and_finished_run_are_rejected(engine_db):
    run = cf.approval.start({"value": 1})
    with pytest.raises(InvalidInput, match="no wait_for_event"):
        run.send_event("nope", {})
    run.cancel()
    with pytest.raises(InvalidTransition):
        run.send_event("approved", {"approved": True, "by": "x"})


def test_event__timeout_fails_with_event_timeout(engine_db):
    run = finished(cf.approval_timeout.start({"value": 1}))
    assert run.status == "failed" and run.error["type"] == "EventTimeout"


# --- suspend / resume ----------------------------------------------------------------------------------------


def test_suspend__resume_reruns_the_step_with_the_data(engine_db):
    run = finished(cf.reviewed.start({"value": 3}))
    assert run.status == "suspended"
    sr = run.step("review")
    assert sr.status == "suspended" and sr.suspend_payload == {"question": "approve 3?"} and sr.label == "review"
    assert run.wait(timeout=1).status == "suspended"
    with pytest.raises(InvalidInput):
        run.resume(data={"ok": "perhaps"})
    assert run.step("review").status == "suspended"
    run.resume(data={"ok": True})  # the only suspended step: no name needed
    run = finished(run)
    assert run.status == "succeeded"
    assert run.output == {"ok": True, "asked": "approve 3?", "attempt": 1}


def test_resume__a_run_that_is_not_suspended_raises_and_changes_nothing(engine_db):
    run = finished(flows.counter.start({"value": 1}))
    seq = run.last_seq
    with pytest.raises(InvalidTransition):
        run.resume(step="increment", data={})
    run.refresh_from_db()
    assert run.last_seq == seq


def test_resume__parallel_suspends_are_resumed_one_by_one(engine_db):
    run = finished(cf.two_reviews.start({"value": 1}))
    assert run.status == "suspended"
    with pytest.raises(InvalidTransition, match="2 steps"):
        run.resume(data={"ok": True})
    run.resume(label="second", data={"ok": False})
    run = finished(run)
    assert run.status == "suspended"
    run.resume(step="review", data={"ok": True})
    run = finished(run)
    assert run.output["second_review"] == {"ok": False} and run.output["review"]["ok"] is True


def test_resume__two_concurrent_resumes_exactly_one_wins(engine_db):
    run = finished(cf.reviewed.start({"value": 1}))
    outcomes = []

    def attempt():
        try:
            run.resume(step="review", data={"ok": True})
            outcomes.append("won")
        except InvalidTransition:
            outcomes.append("lost")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"]
    assert run.events.filter(kind="step_resumed").count() == 1
    assert finished(run).status == "succeeded"


def test_resume__through_a_nested_workflow(engine_db):
    run = finished(cf.parent_review.start({"value": 1}))
    assert run.status == "suspended" and run.step("child-review").status == "suspended"
    run.resume(step="child-review.review", data={"ok": True})
    run = finished(run)
    assert run.status == "succeeded", run.error
    assert run.output == {"ok": True, "asked": "approve 2?", "attempt": 1}


# --- state ---------------------------------------------------------------------------------------------------


def test_state__persisted_visible_to_later_steps_and_nested_workflows(engine_db):
    run = finished(cf.stateful.start({"value": 1}))
    assert run.status == "succeeded", run.error
    assert run.state == {"seen": [1, 2], "total": 3}
    assert run.output == {"report_state": {"seen": [1, 2], "total": 3}, "state-child": {"seen": [1, 2], "total": 3}}
    changes = list(run.events.filter(kind="state_changed").values_list("data", flat=True))
    assert changes[-1] == {"state": {"seen": [1, 2], "total": 3}}


# --- restart / retry -----------------------------------------------------------------------------------------


def test_retry__reruns_a_failed_run_from_its_failed_step(engine_db, redis_conn):
    redis_conn.set("test:fragile:broken", 1)
    failed = finished(cf.restartable.start({"value": 1}))
    assert failed.status == "failed" and failed.error["step"] == "fragile"
    redis_conn.delete("test:fragile:broken")
    retried = finished(failed.retry())
    assert retried.status == "succeeded" and retried.output == {"value": 300}
    assert retried.restarted_from == failed
    assert int(redis_conn.get("test:counted")) == 1  # `counted` was reused, not run again
    assert retried.step("counted").output == {"value": 2}
    with pytest.raises(InvalidTransition):
        retried.retry()


def test_restart__from_a_step_with_new_input(engine_db, redis_conn):
    done = finished(cf.restartable.start({"value": 1}))
    again = finished(done.restart(from_step="increment", input={"value": 10}))
    assert again.output == {"value": 1100}
    assert int(redis_conn.get("test:counted")) == 1
    with pytest.raises(InvalidInput):
        done.restart(from_step="nope")


# --- versions ------------------------------------------------------------------------------------------------


@pytest.fixture
def versions_demo():
    """Tests commit versions of "versions-demo"; afterwards the name leaves the registry."""
    yield "versions-demo"
    registry._flows.pop("versions-demo", None)


def test_version__a_sleeping_run_finishes_on_its_version_after_a_new_one_is_committed(engine_db, versions_demo):
    first = Workflow(versions_demo, input=flows.Num).sleep(0.2).then(flows.increment).commit()
    sleeping = first.start({"value": 5})
    assert Run.objects.get(pk=sleeping.pk).status == "waiting"
    second = Workflow(versions_demo, input=flows.Num).sleep(0.2).then(flows.double).commit()  # a new structure
    assert first.version != second.version and registry.get(versions_demo) is second
    newer = registry.get(versions_demo).start({"value": 5})
    drain()
    sleeping.refresh_from_db()
    newer.refresh_from_db()
    assert (sleeping.status, sleeping.version, sleeping.output) == ("succeeded", first.version, {"value": 6})
    assert (newer.status, newer.version, newer.output) == ("succeeded", second.version, {"value": 10})


def test_version__a_suspended_run_resumes_on_its_version_and_an_old_flow_still_starts_on_its_own(
    engine_db, versions_demo
):
    from workflows.models import Workflow as WorkflowRow

    one = Workflow(versions_demo, input=flows.Num, version="1").then(cf.review).map(lambda c: "one", id="one").commit()
    suspended = finished(one.start({"value": 1}))
    assert suspended.status == "suspended"
    two = Workflow(versions_demo, input=flows.Num, version="2").then(cf.review).map(lambda c: "two", id="two").commit()
    assert [f.version for f in registry.versions(versions_demo)] == ["1", "2"]
    assert registry.get(versions_demo) is two and registry.get(versions_demo, version="1") is one
    again_one = one.start({"value": 2})  # flow.start on a specific flow object starts on that version
    suspended.resume(data={"ok": True})
    drain()
    suspended.refresh_from_db()
    assert (suspended.status, suspended.output) == ("succeeded", "one") and suspended.step("two") is None
    assert again_one.version == "1"
    row = WorkflowRow.objects.get(name=versions_demo)  # one row per name, at the newest version; each version kept
    assert row.version == "2" and set(row.versions.values_list("version", flat=True)) == {"1", "2"}
    assert Run.objects.filter(workflow=row).count() == 2


def test_version__a_run_whose_version_is_undeployed_fails_naming_it(engine_db, versions_demo):
    one = Workflow(versions_demo, input=flows.Num, version="1").sleep(0.2).then(flows.increment).commit()
    sleeping = one.start({"value": 1})
    Workflow(versions_demo, input=flows.Num, version="2").sleep(0.2).then(flows.double).commit()
    registry.unregister(one)  # as a deploy of code without version 1 does
    run = finished(sleeping)
    assert run.status == "failed" and run.error["type"] == "WorkflowVersionError"
    assert "started on version 1 of workflow 'versions-demo'" in run.error["message"]
    assert "deployed: 2" in run.error["message"] and "Deploy version 1 again" in run.error["message"]
    assert run.step("increment") is None and run.step("double") is None


def test_wait__returns_when_suspended(engine_db):
    run = cf.reviewed.start({"value": 1})
    t0 = time.monotonic()
    drain()
    assert run.wait(timeout=5).status == "suspended" and time.monotonic() - t0 < 30
