"""Completion hooks (``Workflow(on_success=, on_failure=, on_finish=)``) through real in-process workers."""

import pytest

from tests import invariants
from tests.testapp import hook_flows
from tests.testapp.chaos_flows import Pace
from workflows import InvalidTransition, Workflow, WorkflowDefinitionError
from workflows.models import Run, RunEvent, StepRun
from workflows.testing import drain


def finished(run: Run) -> Run:
    drain(timeout=20)
    run.refresh_from_db()
    return run


def hook_rows(run: Run) -> dict[str, list[tuple]]:
    rows: dict[str, list[tuple]] = {}
    for sr in run.steps.exclude(hook="").order_by("block", "attempt"):
        rows.setdefault(sr.path, []).append((sr.hook, sr.attempt, sr.status))
    return rows


def journal(run: Run) -> list[tuple[str, str]]:
    kinds = list(run.events.order_by("seq").values_list("seq", "kind", "step"))
    assert [k[0] for k in kinds] == list(range(1, run.last_seq + 1))  # gapless
    return [(kind, step) for _, kind, step in kinds]


def test_hooks__success_runs_on_success_and_on_finish_once_with_the_output(engine_db):
    run = finished(hook_flows.hooked.start({"value": 1}))

    assert run.status == "succeeded" and run.output == {"value": 2, "pause": 0.0}
    assert hook_rows(run) == {"hk_success": [("success", 1, "succeeded")], "hk_finish": [("finish", 1, "succeeded")]}
    assert run.step("hk_success").input == run.output == run.step("hk_success").output
    assert run.step("hk_finish").output == {"status": "succeeded", "output": run.output, "error": None}
    assert invariants.executions(run.pk) == {"hk_body": [1], "hk_success": [1], "hk_finish": [1]}
    events = journal(run)
    end = events.index(("run_succeeded", ""))
    assert ("hook_scheduled", "hk_success") in events[end:] and ("hook_scheduled", "hk_finish") in events[end:]
    assert ("step_succeeded", "hk_success") in events[end:] and ("step_succeeded", "hk_finish") in events[end:]
    assert [k for k, _ in events].count("run_succeeded") == 1 and "run_failed" not in [k for k, _ in events]
    assert invariants.check([run.pk]).problems() == []


def test_hooks__a_hook_longer_than_a_heartbeat_is_not_stopped_for_its_run_having_ended(engine_db, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "HEARTBEAT_SECONDS": 0.2}
    run = finished(hook_flows.hooked.start({"value": 1, "pause": 0.8}))  # the body and on_success: 4 heartbeats

    assert run.status == "succeeded"
    assert run.step("hk_success").status == "succeeded" and run.step("hk_success").attempt == 1
    assert invariants.executions(run.pk) == {"hk_body": [1], "hk_success": [1], "hk_finish": [1]}


def test_hooks__failure_runs_on_failure_and_on_finish_with_the_error(engine_db):
    run = finished(hook_flows.hooked.start({"value": -5}))

    assert run.status == "failed" and run.error["type"] == "NonRetryableError"
    assert hook_rows(run) == {"hk_failure": [("failure", 1, "succeeded")], "hk_finish": [("finish", 1, "succeeded")]}
    assert run.step("hk_failure").output == run.error
    assert run.step("hk_finish").output == {"status": "failed", "output": None, "error": run.error}
    assert invariants.executions(run.pk) == {"hk_body": [1], "hk_failure": [1], "hk_finish": [1]}


def test_hooks__cancel_runs_on_finish_only(engine_db):
    run = hook_flows.sleeping_hooked.start({"value": 1})
    drain(timeout=1)
    run.cancel()
    run = finished(run)

    assert run.status == "canceled"
    assert hook_rows(run) == {"hk_finish": [("finish", 1, "succeeded")]}  # on_failure is for failures only
    assert run.step("hk_finish").output == {"status": "canceled", "output": None, "error": None}
    with pytest.raises(InvalidTransition):
        run.cancel()  # a finished run stays finished; its hooks ran anyway


def test_hooks__a_hook_is_retried_and_its_failure_leaves_the_run_as_it_ended(engine_db):
    retried = finished(hook_flows.flaky_hook.start({"value": 1}))
    assert retried.status == "succeeded"
    assert hook_rows(retried) == {"hk_flaky": [("success", 1, "failed"), ("success", 2, "succeeded")]}

    broken = finished(hook_flows.flaky_hook.start({"value": 98}))  # the body outputs 99: every attempt fails
    assert broken.status == "succeeded" and broken.output == {"value": 99, "pause": 0.0} and broken.error is None
    assert hook_rows(broken) == {"hk_flaky": [("success", 1, "failed"), ("success", 2, "failed")]}
    failed = RunEvent.objects.get(run=broken, kind="hook_failed")
    assert failed.step == "hk_flaky" and failed.data["error"]["type"] == "ConnectionError"


def test_hooks__a_nested_workflow_as_a_hook_runs_as_a_child_run(engine_db):
    run = finished(hook_flows.nested_hook.start({"value": -1}))

    assert run.status == "failed"
    assert hook_rows(run) == {"hook-child": [("finish", 1, "succeeded")]}
    child = Run.objects.get(parent_step=run.step("hook-child"))
    assert child.status == "succeeded" and child.output == {"seen": "failed"}
    assert run.step("hook-child").output == {"seen": "failed"}


def test_hooks__a_hook_that_suspends_fails_instead(engine_db):
    run = finished(hook_flows.suspending_hook.start({"value": 1}))

    assert run.status == "succeeded"
    assert hook_rows(run) == {"hk_suspends": [("success", 1, "failed")]}
    assert run.step("hk_suspends").error["type"] == "InvalidTransition"
    assert RunEvent.objects.filter(run=run, kind="hook_failed").count() == 1


def test_hooks__wait_can_wait_for_the_hooks_too(engine_db):
    run = hook_flows.hooked.start({"value": 1})
    drain(timeout=20)
    assert run.wait(5, hooks=True).status == "succeeded"
    assert not StepRun.objects.filter(run=run).exclude(hook="").open().exists()


def test_hooks__are_part_of_the_version_and_the_graph():
    from tests.testapp.hook_flows import hk_body, hk_finish, hk_success

    plain = Workflow("v-hooks", input=Pace).then(hk_body)
    with_hook = Workflow("v-hooks", input=Pace, on_success=hk_success).then(hk_body)
    other_hook = Workflow("v-hooks", input=Pace, on_success=hk_finish).then(hk_body)
    as_finish = Workflow("v-hooks", input=Pace, on_finish=hk_success).then(hk_body)
    versions = {w.commit().version for w in (plain, with_hook, other_hook, as_finish)}
    assert len(versions) == 4
    graph = with_hook.graph
    assert graph.body_end == 1 and [b.kind for b in graph.blocks] == ["step", "hook"]
    assert graph.to_json()["blocks"][1]["on"] == "success"
    with pytest.raises(KeyError):
        graph.block_of("hk_success")  # not a step of the body: ctx.result() and restart() do not reach it


def test_hooks__must_be_steps_or_committed_workflows():
    with pytest.raises(WorkflowDefinitionError, match="on_success"):
        Workflow("bad-hook", on_success=lambda c: None)
    with pytest.raises(WorkflowDefinitionError, match="committed"):
        Workflow("bad-hook", on_finish=Workflow("uncommitted"))


def test_hooks__the_run_page_draws_them_after_the_body_and_lists_their_steps(engine_db, admin_client):
    from django.urls import reverse

    run = finished(hook_flows.hooked.start({"value": 1}))
    page = admin_client.get(reverse("workflows:run", args=[run.pk])).content.decode()

    assert "completion hooks hk_success, hk_failure, hk_finish" in page  # the graph's description
    assert "on success" in page and "on finish" in page
    assert 'data-step="hk_success"' in page
    assert 'value="hk_body"' in page and 'value="hk_success"' not in page  # restart from the body's steps only
