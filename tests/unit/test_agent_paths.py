"""``agent_step("package.module:attribute")``: the agent named by its import path, imported when the step first
runs. What can be checked without importing the module fails at definition; the rest fails the step at its first
execution (not retried) and is reported by ``manage.py check``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import run_checks

from tests.testapp import agent_flows as af
from workflows import Workflow, WorkflowDefinitionError
from workflows.agents import AgentPathError, agent_step
from workflows.definition import registry
from workflows.exceptions import NonRetryableError

from .test_engine import finished

BASE_DIR = Path(__file__).resolve().parents[2]


def _step(path: str, **options):
    return agent_step(path, id="agent", prompt=lambda c: "hi", **options)


def test_agent_path__resolves_to_the_agent_once_and_its_tools_give_the_approval_form():
    made = _step("tests.testapp.agent_flows:support", approval={"refund"})
    source = made.fn.agent_source

    assert source.get() is af.support and source.get() is af.support
    assert set(made.check_resume.tool_schemas) == {"refund"}
    assert made.check_resume.tool_schemas["refund"]["required"] == ["order_id", "amount"]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("tests.testapp.agent_flows.support", "is not of the form 'package.module:attribute'"),
        ("tests.testapp.agent_flows:", "is not of the form"),
        ("tests.testapp.no_such_module:agent", "does not resolve: no module named 'tests.testapp.no_such_module'"),
        ("no_such_package.agents:agent", "does not resolve: cannot import 'no_such_package.agents'"),
    ],
)
def test_agent_path__a_malformed_path_or_a_missing_module_fails_at_definition(path, why):
    with pytest.raises(AgentPathError, match=f"agent_step 'agent': the agent path '{path}' {why}") as caught:
        _step(path)

    assert isinstance(caught.value, WorkflowDefinitionError) and isinstance(caught.value, NonRetryableError)


@pytest.mark.parametrize(
    ("path", "why", "approval"),
    [
        ("tests.testapp.agent_flows:nobody", "'tests.testapp.agent_flows' has no attribute 'nobody'", set()),
        ("tests.testapp.agent_flows:Ticket", "it is a ModelMetaclass, not a pydantic_ai.Agent", set()),
        ("tests.testapp.agent_flows:support", "approval names unknown tools ['delete']", {"delete"}),
    ],
)
def test_agent_path__one_that_does_not_resolve_fails_the_step_at_once_and_manage_py_check_names_it(
    engine_db, path, why, approval
):
    flow = Workflow("agent-bad-path").then(_step(path, retries=3, approval=approval)).commit()
    try:
        errors = [e for e in run_checks() if e.id == "workflows.E020"]
        run = finished(flow.start({}))
    finally:
        registry.unregister(flow)

    assert len(errors) == 1
    assert errors[0].msg.startswith("workflow 'agent-bad-path': agent_step 'agent': ")
    assert f"the agent path '{path}'" in errors[0].msg and why in errors[0].msg
    assert run.status == "failed"
    attempts = list(run.steps.filter(path="agent").values_list("attempt", "status"))
    assert attempts == [(1, "failed")]  # not retried: a retry cannot make the module or attribute appear
    assert run.step("agent").error["type"] == "AgentPathError"
    assert (
        f"the agent path '{path}'" in run.step("agent").error["message"] and why in run.step("agent").error["message"]
    )


def test_agent_path__the_demo_workflow_registers_without_importing_pydantic_ai():
    code = (
        "import sys, django; django.setup(); from workflows.definition import registry; "
        "assert registry.get('support-desk'); print(sorted(m for m in sys.modules if m.startswith('pydantic_ai')))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"}
    out = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
