"""A worker dies right after an agent step recorded some model requests and tool calls; another worker finishes
the step, replaying them: the provider's request counter and the tools' execution table show that nothing that
completed was made again. The provider is an OpenAI-compatible server on 127.0.0.1 driven by pydantic-ai's real
OpenAI model and provider in the worker processes."""

from __future__ import annotations

import pytest

from tests.fake_openai import FakeOpenAI
from tests.testapp import agent_http_flows as hf
from tests.testapp.models import ToolExecution
from tests.unit.test_agents_http import desk_script
from workflows import faults
from workflows.models import RunStatus, StepRun

from .conftest import FAST, FORKING, SIMPLE, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def provider():
    fake = FakeOpenAI(desk_script).start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
@pytest.mark.parametrize(
    "point",
    ["recorded desk/model#2", "recorded desk/tool:reserve#1", "recorded desk/tool:check_stock#2"],
    ids=["after-2-requests-2-tools", "after-the-last-tool", "after-concurrent-tools"],
)
def test_agent_crash__completed_requests_and_tool_calls_are_not_made_again(
    live, provider, tmp_path, worker_class, point
):
    env = {**FAST, "WORKFLOWS_TEST_OPENAI_URL": provider.url}
    crash = {**env, "WORKFLOWS_CRASH_AT": point, "WORKFLOWS_CRASH_ONCE": str(tmp_path / "crashed")}
    doomed = live.worker(worker_class, env=crash)
    live.recovery(env=env)

    run = hf.desk_flow.start({"question": "reserve 2 widgets"})

    wait_for((tmp_path / "crashed").exists, timeout=60, what=f"a crash at {point}")
    if worker_class == SIMPLE:
        assert doomed.popen.wait(10) == faults.EXIT_CODE
        live.worker(SIMPLE, env=env)
    run = run.wait(90)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "Reserved 2 widgets for you."

    assert len(provider.requests) == 3  # each model request made once, across the crash
    tools = list(ToolExecution.objects.order_by("pk").values_list("tool", "args"))
    for path in ("desk/tool:check_stock#1", "desk/tool:check_stock#2"):
        attempts = list(StepRun.objects.filter(run=run, path=path).order_by("attempt"))
        item = attempts[0].input["args"]["item"]
        ran = sum(1 for t, a in tools if t == "check_stock" and a["item"] == item)
        assert [a.status for a in attempts][-1] == "succeeded"
        if attempts[0].status == "succeeded":  # recorded before the crash: never made again
            assert len(attempts) == 1 and ran == 1
        else:  # in flight when the worker died (a concurrent call): made again, at most once per attempt
            assert attempts[0].error["type"] == "WorkerLost" and 1 <= ran <= len(attempts)
    assert sorted({a["item"] for t, a in tools if t == "check_stock"}) == ["gadget", "widget"]
    recorded = point.split(" ", 1)[1]  # the row the worker died right after: made once
    assert list(StepRun.objects.filter(run=run, path=recorded).values_list("status", flat=True)) == ["succeeded"]
    assert [a for t, a in tools if t == "reserve"] == [{"item": "widget", "count": 2}]
    attempts = list(StepRun.objects.filter(run=run, path="desk").order_by("attempt").values_list("status", "error"))
    assert [s for s, _ in attempts] == ["failed", "succeeded"] and attempts[0][1]["type"] == "WorkerLost"
    for path in ("desk/model#1", "desk/model#2", "desk/model#3", "desk/tool:reserve#1"):
        assert list(StepRun.objects.filter(run=run, path=path).values_list("status", flat=True)) == ["succeeded"]
    assert not StepRun.objects.filter(run=run, status="running").exists()
    print(f"crash at {point!r}: provider requests {len(provider.requests)}, tool executions {len(tools)}")
