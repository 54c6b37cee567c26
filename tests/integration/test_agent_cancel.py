"""Cancelling a run stops its agent step in a real worker while the model request is in flight: the provider
does not answer for 120 s, yet the step and its request row end within the cancel's deadline, the request is
abandoned (never answered to the step) and the worker is free for the next run at once."""

from __future__ import annotations

import pytest

from tests.fake_openai import FakeOpenAI
from tests.testapp import agent_http_flows as hf
from workflows.models import RunStatus, StepRun

from .conftest import FORKING, SIMPLE, wait_for

pytestmark = pytest.mark.integration
HANG = 120  # the provider's silence, far longer than the cancel may take
CANCEL_DEADLINE = 30


def hang_first(request, n):
    return {"hang": HANG, "content": "too late"} if n == 1 else {"content": "right away"}


@pytest.fixture
def provider():
    fake = FakeOpenAI(hang_first).start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
def test_agent_cancel__a_hung_model_request_is_abandoned_and_the_run_ends_canceled(live, provider, worker_class):
    live.worker(worker_class, env={"WORKFLOWS_TEST_OPENAI_URL": provider.url})
    run = hf.patient_flow.start({"question": "anyone there?"})
    wait_for(provider.hanging.is_set, timeout=60, what="the model request in flight")
    wait_for(lambda: StepRun.objects.filter(run=run, path="ask/model#1", status="running").exists(), 30)

    run.cancel()

    def stopped():
        return not StepRun.objects.filter(run=run, status="running").exists()

    wait_for(stopped, timeout=CANCEL_DEADLINE, what="the agent step and its request to stop")
    assert provider.answered_late == []  # stopped while the provider was still silent: the request was abandoned
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    rows = dict(StepRun.objects.filter(run=run).values_list("path", "status"))
    assert rows["ask"] == "canceled" and rows["ask/model#1"] in ("canceled", "failed")
    assert "ask/model#2" not in rows  # the agent loop did not go on

    # the same (only) worker takes the next run at once: it is not stuck waiting for the hung answer
    nxt = hf.patient_flow.start({"question": "and now?"}).wait(CANCEL_DEADLINE)
    assert nxt.status == RunStatus.SUCCEEDED, nxt.error
    assert nxt.output == "right away"
    assert provider.answered_late == []
