"""``agent_step`` on pydantic-ai's real OpenAI model and provider against an OpenAI-compatible server on
127.0.0.1 (``tests/fake_openai.py``): replay, 429 with Retry-After, provider errors, streaming."""

from __future__ import annotations

import pytest

from tests.fake_openai import FakeOpenAI, tool_messages
from tests.testapp import agent_http_flows as hf
from tests.testapp.models import ToolExecution
from workflows.models import StepRun

from .test_engine import finished


def desk_script(request, n):
    """Check two items' stock (two tool calls at once), reserve one, then answer."""
    done = len(tool_messages(request))
    if done == 0:
        return {"tool_calls": [("check_stock", {"item": "widget"}), ("check_stock", {"item": "gadget"})]}
    if done == 2:
        return {"tool_calls": [("reserve", {"item": "widget", "count": 2})]}
    return {"content": "Reserved 2 widgets for you."}


@pytest.fixture
def server():
    servers = []

    def start(script):
        fake = FakeOpenAI(script).start()
        hf.point_at(fake.url)
        servers.append(fake)
        return fake

    yield start
    for fake in servers:
        fake.stop()


def executions() -> list[tuple[str, dict]]:
    return list(ToolExecution.objects.order_by("pk").values_list("tool", "args"))


def test_agent_http__requests_and_tool_calls_are_rows_made_once(engine_db, server):
    fake = server(desk_script)
    run = finished(hf.desk_flow.start({"question": "reserve 2 widgets"}))
    assert run.status == "succeeded", run.error
    assert run.output == "Reserved 2 widgets for you."
    assert len(fake.requests) == 3
    assert sorted(a["item"] for t, a in executions()[:2] if t == "check_stock") == ["gadget", "widget"]
    assert executions()[2:] == [("reserve", {"item": "widget", "count": 2})]
    paths = sorted(StepRun.objects.filter(run=run).exclude(path="desk").values_list("path", "status"))
    assert paths == [
        ("desk/model#1", "succeeded"), ("desk/model#2", "succeeded"), ("desk/model#3", "succeeded"),
        ("desk/tool:check_stock#1", "succeeded"), ("desk/tool:check_stock#2", "succeeded"),
        ("desk/tool:reserve#1", "succeeded"),
    ]  # fmt: skip
    assert run.step("desk/tool:check_stock#1").input["args"] == {"item": "widget"}  # numbered in response order
    assert run.usage["requests"] == 3
    assert run.usage["input_tokens"] == 10 + 20 + 30 and run.usage["output_tokens"] == 15
    # what the provider was sent: the tool results of the earlier calls, by their ids
    assert [m["tool_call_id"] for m in tool_messages(fake.requests[2])] == ["call_1_0", "call_1_1", "call_2_0"]


def test_agent_http__429_with_retry_after_is_retried_no_sooner_and_replays_what_succeeded(engine_db, server):
    def script(request, n):
        if n == 2:  # the second request is refused once
            return {"status": 429, "retry_after": 2}
        return desk_script(request, n)

    fake = server(script)
    run = finished(hf.desk_flow.start({"question": "reserve 2 widgets"}), timeout=60)
    assert run.status == "succeeded", run.error
    attempts = list(StepRun.objects.filter(run=run, path="desk").order_by("attempt"))
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0].error["type"] == "ModelRateLimitError" and "429" in attempts[0].error["message"]
    retrying = run.events.get(kind="step_retrying", step="desk")
    assert retrying.data["delay"] >= 2  # max(backoff 0.05 s, Retry-After 2 s)
    assert (attempts[1].due_at - attempts[0].finished_at).total_seconds() >= 1.9
    # request 1 and both check_stock calls were replayed: 4 requests = 1, 2 (429), 2 again, 3
    assert len(fake.requests) == 4
    assert [t for t, _ in executions()] == ["check_stock", "check_stock", "reserve"]
    model2 = list(StepRun.objects.filter(run=run, path="desk/model#2").order_by("attempt").values_list("status"))
    assert model2 == [("failed",), ("succeeded",)]


def test_agent_http__a_permanent_provider_error_fails_without_retry(engine_db, server):
    fake = server(lambda request, n: {"status": 401})
    run = finished(hf.desk_flow.start({"question": "hello"}))
    assert run.status == "failed"
    assert run.error["type"] == "NonRetryableError" and "401" in run.error["message"]
    assert len(fake.requests) == 1 and StepRun.objects.filter(run=run, path="desk").count() == 1


def test_agent_http__cancel_abandons_a_request_the_provider_does_not_answer(engine_db, server):
    import threading

    from workflows.models import Run
    from workflows.testing import drain

    fake = server(lambda request, n: {"hang": 120, "content": "too late"})
    run = hf.patient_flow.start({"question": "anyone there?"})

    def cancel_when_in_flight():
        if fake.hanging.wait(30):
            Run.objects.get(pk=run.pk).cancel()

    canceller = threading.Thread(target=cancel_when_in_flight)
    canceller.start()
    drain(timeout=60)  # TimeoutError if the step waited for the provider's answer
    canceller.join(30)
    run.refresh_from_db()
    assert run.status == "canceled"
    assert fake.answered_late == [] and len(fake.requests) == 1
    assert dict(run.steps.values_list("path", "status")) == {"ask": "canceled", "ask/model#1": "canceled"}
