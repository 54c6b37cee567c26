"""``agent_step`` is a block like any step: in ``then``, ``parallel``, ``branch``, ``foreach`` and loops, each
agent's sub-steps live under its own path (no two items or iterations share one) and replay only their own."""

from __future__ import annotations

import threading

import pytest

from tests.testapp import agent_block_flows as bf
from tests.testapp import agent_flows as af
from workflows.models import Run
from workflows.testing import drain

from .test_engine import assert_journal_gapless, finished


@pytest.fixture(autouse=True)
def fresh_counters():
    af.MODEL_CALLS.clear()
    af.FAIL_ONCE.clear()
    yield


def substeps(run: Run) -> list[tuple[str, str]]:
    return sorted(run.steps.exclude(kind="step").values_list("path", "status"))


def test_agent_step__in_then(engine_db):
    run = finished(bf.then_flow.start("hi"))
    assert run.status == "succeeded", run.error
    assert run.output == "echo: HI"
    assert substeps(run) == [("answer/model#1", "succeeded"), ("answer/model#2", "succeeded"),
                             ("answer/tool:look_up#1", "succeeded")]  # fmt: skip


def test_agent_step__in_parallel_each_agent_has_its_own_rows(engine_db):
    run = finished(bf.parallel_flow.start("hi"))
    assert run.status == "succeeded", run.error
    assert run.output == {"left": "echo: HI", "right": "echo: HI"}
    assert [p for p, _ in substeps(run)] == [
        "left/model#1", "left/model#2", "left/tool:look_up#1",
        "right/model#1", "right/model#2", "right/tool:look_up#1",
    ]  # fmt: skip
    assert af.MODEL_CALLS["echo"] == 4


@pytest.mark.parametrize("given,ran", [("yes", "agreed"), ("no", "refused")])
def test_agent_step__in_branch_only_the_chosen_agent_runs(engine_db, given, ran):
    run = finished(bf.branch_flow.start(given))
    assert run.status == "succeeded", run.error
    assert run.output == {ran: f"echo: {given.upper()}"}
    assert {p.split("/")[0] for p, _ in substeps(run)} == {ran}


def test_agent_step__in_foreach_one_agent_per_item_outputs_in_order_and_paths_apart(engine_db):
    run = finished(bf.foreach_flow.start(["a", "b", "c"]))
    assert run.status == "succeeded", run.error
    assert run.output == ["echo: A", "echo: B", "echo: C"]
    paths = [p for p, s in substeps(run) if s == "succeeded"]
    assert paths == [f"answer[{i}]/{sub}" for i in range(3) for sub in ("model#1", "model#2", "tool:look_up#1")]
    for i, item in enumerate("abc"):  # each item's rows hold its own conversation
        assert run.step(f"answer[{i}]/tool:look_up#1").input["args"] == {"text": item}
        assert run.step(f"answer[{i}]/model#2").output["parts"][0]["content"] == f"echo: {item.upper()}"
    assert af.MODEL_CALLS["echo"] == 6
    assert_journal_gapless(run)


@pytest.mark.parametrize("flow,iterations", [(bf.dowhile_flow, 3), (bf.dountil_flow, 2)])
def test_agent_step__in_loops_each_iteration_has_its_own_rows(engine_db, flow, iterations):
    run = finished(flow.start("x"))
    assert run.status == "succeeded", run.error
    # each iteration prompts with the previous output and its number: nothing replayed from an earlier one
    expected = "x"
    for n in range(1, iterations + 1):
        expected = f"echo: {expected} {n}".upper()
        assert run.step(f"answer#{n}/tool:look_up#1").input["args"]["text"].upper() == expected[len("echo: ") :]
    assert run.output == expected.replace("ECHO: ", "echo: ", 1)
    assert [p for p, _ in substeps(run)] == sorted(
        f"answer#{n}/{sub}" for n in range(1, iterations + 1) for sub in ("model#1", "model#2", "tool:look_up#1")
    )
    assert af.MODEL_CALLS["echo"] == 2 * iterations


def test_agent_step__in_foreach_a_retried_item_replays_its_own_rows_only(engine_db):
    af.FAIL_ONCE.add("B")  # item 1's second request fails once: its step runs again and replays request 1
    run = finished(bf.foreach_flow.start(["a", "b", "c"]))
    assert run.status == "succeeded", run.error
    assert run.output == ["echo: A", "echo: B", "echo: C"]
    assert run.steps.filter(path="answer[1]").count() == 2
    assert list(run.steps.filter(path="answer[1]/model#2").values_list("attempt", "status").order_by("attempt")) == [
        (1, "failed"), (2, "succeeded"),
    ]  # fmt: skip
    assert run.steps.filter(path="answer[1]/model#1").count() == 1  # replayed, not made again
    assert af.MODEL_CALLS["echo"] == 7  # 6 + the failed one


def test_agent_step__cancel_stops_a_model_request_in_flight(engine_db):
    bf.HANG.update(started=threading.Event(), returned=False)
    run = bf.hang_flow.start("hello?")
    canceled: list[str] = []

    def cancel_when_in_flight():
        assert bf.HANG["started"].wait(30)
        Run.objects.get(pk=run.pk).cancel()
        canceled.append("yes")

    canceller = threading.Thread(target=cancel_when_in_flight)
    canceller.start()
    drain(timeout=60)  # returns once the run has ended, long before the hung request would answer
    canceller.join(30)
    run.refresh_from_db()
    assert canceled == ["yes"]
    assert run.status == "canceled"
    assert bf.HANG["returned"] is False  # the request was abandoned, not waited for
    assert run.step("hang/model#1").status == "canceled"
    assert not run.steps.filter(status="running").exists()
