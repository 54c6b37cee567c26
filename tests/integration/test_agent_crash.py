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

from .conftest import FORKING, SIMPLE, wait_for

pytestmark = pytest.mark.integration
FAST = {"WORKFLOWS_LEASE_SECONDS": "1.5", "WORKFLOWS_REQUEUE_AFTER_SECONDS": "1"}


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
    stock = sorted(a["item"] for t, a in tools if t == "check_stock")
    if point.endswith("check_stock#2"):
        # The two stock checks run concurrently: the crash follows #2's record, while #1 may still have been in
        # flight (its body done, its row not yet written): #1 then runs again, as any unrecorded step does. The
        # recorded one never does.
        recorded = StepRun.objects.get(run=run, path="desk/tool:check_stock#2", status="succeeded").input["args"]
        other = ({"gadget", "widget"} - {recorded["item"]}).pop()
        first = list(StepRun.objects.filter(run=run, path="desk/tool:check_stock#1").values_list("status", flat=True))
        assert stock.count(recorded["item"]) == 1
        assert stock.count(other) == (2 if first[0] != "succeeded" else 1) and first[-1] == "succeeded", first
    else:
        assert stock == ["gadget", "widget"]
    assert [a for t, a in tools if t == "reserve"] == [{"item": "widget", "count": 2}]
    attempts = list(StepRun.objects.filter(run=run, path="desk").order_by("attempt").values_list("status", "error"))
    assert [s for s, _ in attempts] == ["failed", "succeeded"] and attempts[0][1]["type"] == "WorkerLost"
    for path in ("desk/model#1", "desk/model#2", "desk/model#3", "desk/tool:reserve#1"):
        assert list(StepRun.objects.filter(run=run, path=path).values_list("status", flat=True)) == ["succeeded"]
    assert not StepRun.objects.filter(run=run, status="running").exists()
    print(f"crash at {point!r}: provider requests {len(provider.requests)}, tool executions {len(tools)}")
