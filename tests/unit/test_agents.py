"""``agent_step`` on pydantic-ai's FunctionModel, in-process (``drain``): sub-step rows, replay, approval,
limits, usage and threads."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.testapp import agent_flows as af
from tests.testapp.models import ToolExecution
from workflows import InvalidInput, InvalidTransition
from workflows.live import sender
from workflows.models import AgentMessage, Run, StepRun

from .test_engine import assert_journal_gapless, finished


@pytest.fixture(autouse=True)
def fresh_counters():
    af.MODEL_CALLS.clear()
    af.FAIL_ONCE.clear()
    yield


def rows(run: Run) -> list[tuple[str, int, str, str]]:
    return list(run.steps.order_by("pk").values_list("path", "attempt", "kind", "status"))


def executions(tool: str) -> list[dict]:
    return list(ToolExecution.objects.filter(tool=tool).order_by("pk").values_list("args", flat=True))


def suspended_support_run() -> Run:
    run = finished(af.support_flow.start({"question": "refund my order", "order_id": "A1"}))
    assert run.status == "suspended", run.error
    return run


def test_agent_step__each_request_and_tool_call_is_a_row_and_approval_suspends_before_the_tool(engine_db):
    run = suspended_support_run()
    assert rows(run) == [
        ("answer", 1, "step", "suspended"),
        ("answer/model#1", 1, "model", "succeeded"),
        ("answer/tool:lookup_order#1", 1, "tool", "succeeded"),
        ("answer/model#2", 1, "model", "succeeded"),
    ]
    payload = run.step("answer").suspend_payload
    assert payload == {"tool": "refund", "args": {"order_id": "A1", "amount": 30.0}, "tool_call_id": "call-refund"}
    assert run.step("answer").label == "approve refund"
    assert executions("refund") == []  # suspended before it ran
    lookup = run.step("answer/tool:lookup_order#1")
    assert lookup.input["args"] == {"order_id": "A1"} and lookup.output == {
        "result": {"id": "A1", "total": 30.0, "status": "delivered"}
    }
    response = run.step("answer/model#1").output
    assert response["kind"] == "response" and response["parts"][0]["tool_name"] == "lookup_order"
    assert af.MODEL_CALLS["support"] == 2


def test_agent_step__approved_the_tool_runs_once_and_nothing_done_before_is_made_again(engine_db):
    run = suspended_support_run()
    run.resume(data={"approved": True})
    run = finished(run)
    assert run.status == "succeeded", run.error
    assert run.output == "Answer: refunded 30 on A1"
    assert af.MODEL_CALLS["support"] == 3  # requests 1 and 2 replayed from their rows, 3 made
    assert executions("lookup_order") == [{"order_id": "A1"}] and executions("refund") == [
        {"order_id": "A1", "amount": 30.0}
    ]
    assert [r for r in rows(run) if r[2] != "step"] == [
        ("answer/model#1", 1, "model", "succeeded"),
        ("answer/tool:lookup_order#1", 1, "tool", "succeeded"),
        ("answer/model#2", 1, "model", "succeeded"),
        ("answer/tool:refund#1", 1, "tool", "succeeded"),
        ("answer/model#3", 1, "model", "succeeded"),
    ]
    assert run.step("answer/tool:refund#1").input["approved"] is True
    assert_journal_gapless(run)


def test_agent_step__denied_the_model_reads_the_reason_as_the_tools_result(engine_db):
    run = suspended_support_run()
    run.resume(data={"approved": False, "reason": "refunds need a receipt"})
    run = finished(run)
    assert run.status == "succeeded", run.error
    assert run.output == "Answer: The call of refund was denied by a person: refunds need a receipt"
    assert executions("refund") == []
    denied = run.step("answer/tool:refund#1")
    assert denied.output["denied"] is True and denied.input["reason"] == "refunds need a receipt"


def test_agent_step__approved_with_edited_args_runs_the_tool_with_them(engine_db):
    run = suspended_support_run()
    run.resume(data={"approved": True, "args": {"order_id": "A1", "amount": 12.5}})
    run = finished(run)
    assert run.output == "Answer: refunded 12.5 on A1"
    assert executions("refund") == [{"order_id": "A1", "amount": 12.5}]
    assert run.step("answer/tool:refund#1").input["edited_args"] is True


def test_agent_step__edited_args_that_do_not_fit_the_tool_are_invalid_input_and_change_nothing(engine_db):
    run = suspended_support_run()
    last_seq = run.last_seq
    with pytest.raises(InvalidInput, match="refund"):
        run.resume(data={"approved": True, "args": {"order_id": "A1", "amount": "lots"}})
    with pytest.raises(InvalidInput):
        run.resume(data={"approve": True})  # not a decision
    run.refresh_from_db()
    assert run.status == "suspended" and run.last_seq == last_seq
    assert run.step("answer").status == "suspended"


def test_agent_step__of_two_concurrent_decisions_exactly_one_wins(engine_db):
    run = suspended_support_run()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def decide(data):
        barrier.wait()
        try:
            Run.objects.get(pk=run.pk).resume(data=data)
            outcomes.append("won")
        except InvalidTransition:
            outcomes.append("lost")
        finally:
            sender.reset()  # this thread's channel-layer loop, closed here rather than by the garbage collector
            connection.close()

    threads = [
        threading.Thread(target=decide, args=({"approved": True},)),
        threading.Thread(target=decide, args=({"approved": False, "reason": "no"},)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"]
    run = finished(run)
    assert run.status == "succeeded"
    assert run.events.filter(kind="step_resumed").count() == 1
    assert len(executions("refund")) == (1 if "refunded" in run.output else 0)


def test_agent_step__a_provider_error_retries_the_step_and_replays_what_succeeded(engine_db):
    af.FAIL_ONCE.add("support")  # the second request fails once
    run = finished(af.support_flow.start({"question": "refund", "order_id": "B2"}))
    assert run.status == "suspended", run.error
    assert [(a.attempt, a.status) for a in StepRun.objects.filter(run=run, path="answer").order_by("attempt")] == [
        (1, "failed"),
        (2, "suspended"),
    ]
    assert [(r.attempt, r.status) for r in StepRun.objects.filter(run=run, path="answer/model#2")] == [
        (1, "failed"),
        (2, "succeeded"),
    ]
    assert StepRun.objects.filter(run=run, path="answer/model#1").count() == 1  # replayed, not made again
    assert executions("lookup_order") == [{"order_id": "B2"}]
    assert af.MODEL_CALLS["support"] == 3  # 1, 2 (raised), 2 again


def test_agent_step__max_turns_ends_a_runaway_loop_clearly(engine_db):
    run = finished(af.loop_flow.start({"question": "loop"}))
    assert run.status == "failed"
    assert run.error["type"] == "TurnLimitExceeded" and "max_turns=4" in run.error["message"]
    assert StepRun.objects.filter(run=run, kind="model").count() == 4
    assert run.steps.filter(path="spin").count() == 1  # not retried


def test_agent_step__max_tokens_per_run_fails_the_run_once_exceeded(engine_db):
    run = finished(af.budget_flow.start({"question": "loop"}))
    assert run.status == "failed"
    assert run.error["type"] == "TokenBudgetExceeded" and "max_tokens_per_run is 300" in run.error["message"]
    used = run.usage["total_tokens"]
    assert used > 300
    requests = StepRun.objects.filter(run=run, kind="model").count()
    assert 1 < requests < 50


def test_agent_step__structured_output_usage_and_messages(engine_db):
    run = finished(af.classify_flow.start({"question": "help me now", "customer": "c-1"}))
    assert run.status == "succeeded", run.error
    assert run.output == {"category": "billing after 0 earlier questions", "urgent": True}
    messages = list(AgentMessage.objects.filter(run=run).order_by("seq"))
    assert [(m.seq, m.kind, m.step_path, m.request_path, m.thread) for m in messages] == [
        (1, "request", "classify", "classify/model#1", "c-1"),
        (2, "response", "classify", "classify/model#1", "c-1"),
        (3, "request", "classify", "classify/final", "c-1"),  # the output tool's return closes the conversation
    ]
    response = messages[1]
    assert response.input_tokens > 0 and response.output_tokens > 0
    assert run.usage == {
        "input_tokens": response.input_tokens,
        "output_tokens": response.output_tokens,
        "total_tokens": response.input_tokens + response.output_tokens,
        "requests": 1,
        "steps": {
            "classify": {
                "input_tokens": response.input_tokens,
                "output_tokens": response.output_tokens,
                "total_tokens": response.input_tokens + response.output_tokens,
                "requests": 1,
            }
        },
    }
    assert "help me now" in messages[0].text


def test_agent_step__a_thread_continues_the_conversation_of_earlier_runs(engine_db):
    first = finished(af.classify_flow.start({"question": "where is my order", "customer": "c-42"}))
    other = finished(af.classify_flow.start({"question": "unrelated", "customer": "c-7"}))
    second = finished(af.classify_flow.start({"question": "and my refund", "customer": "c-42"}))
    assert first.output["category"] == "billing after 0 earlier questions"
    assert other.output["category"] == "billing after 0 earlier questions"
    assert second.output["category"] == "billing after 1 earlier questions"  # saw the first run's conversation
    assert AgentMessage.objects.filter(thread="c-42").count() == 6


def test_agent_step__a_replay_that_asks_for_something_else_fails_as_non_deterministic(engine_db):
    run = suspended_support_run()
    row = StepRun.objects.get(run=run, path="answer/model#1")  # as if the code had changed since it was recorded
    row.input = {**row.input, "digest": "recorded-for-other-messages"}
    row.save(update_fields=["input"])
    run.resume(data={"approved": True})
    run = finished(run)
    assert run.status == "failed"
    assert run.error["type"] == "NonDeterministicAgent" and "answer/model#1" in run.error["message"]
    assert executions("refund") == [] and af.MODEL_CALLS["support"] == 2  # nothing made on a wrong replay


def test_agent_step__usage_in_the_api_and_the_conversation_on_the_run_page(engine_db, client, user):
    run = af.classify_flow.start({"question": "help me now", "customer": "c-9"}, user=user)
    run = finished(run)
    client.force_login(user)
    detail = client.get(f"/api/runs/{run.pk}/").json()
    assert detail["usage"] == run.usage and detail["usage"]["requests"] == 1
    assert {s["path"] for s in detail["steps"]} == {"classify", "classify/model#1"}
    empty = finished(af.support_flow.start({"question": "x"}, user=user))  # suspended, no output tool
    assert client.get(f"/api/runs/{empty.pk}/").json()["usage"]["requests"] == 2
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="conversation-heading"' in page and "help me now" in page and "thread c-9" in page
    assert "1 model request," in page


def test_agent_step__tool_pool_bounds_the_tool_calls_running_at_once(engine_db, redis_conn):
    run = finished(af.fan_out_flow.start({"question": "six lookups"}))
    assert run.status == "succeeded", run.error
    assert run.output == "6 lookups"
    overlap = [int(n) for n in redis_conn.lrange("test:tools:overlap", 0, -1)]
    assert len(overlap) == 6 and max(overlap) <= 3  # the "narrow" pool allows 3
    tools = StepRun.objects.filter(run=run, kind="tool")
    assert tools.count() == 6 and set(tools.values_list("pool", "status")) == {("narrow", "succeeded")}
    assert len(executions("slow_lookup")) == 6


def test_agent_step__tool_pool_must_be_configured_and_differ_from_the_steps_pool():
    from workflows import WorkflowDefinitionError
    from workflows.agents import agent_step

    with pytest.raises(WorkflowDefinitionError, match="Unknown pool 'nope'"):
        agent_step(af.fan_out, id="x", prompt=lambda c: "", tool_pool="nope")
    with pytest.raises(WorkflowDefinitionError, match="must differ"):
        agent_step(af.fan_out, id="x", prompt=lambda c: "", pool="narrow", tool_pool="narrow")
