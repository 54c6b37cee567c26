import json
from typing import Any

import pytest
from pydantic import BaseModel

from workflows import Backoff, StepContext, Workflow, WorkflowDefinitionError, step
from workflows.definition import registry


class A(BaseModel):
    x: int


class B(BaseModel):
    y: str


@step
def a_to_b(ctx: StepContext, data: A) -> B:
    return B(y=str(data.x))


@step(id="other", retries=3, backoff=2, timeout=5, pool="narrow")
def configured(ctx: StepContext, data: B) -> list[int]:
    return [1]


@step
def untyped(ctx):
    return None


def test_step__types_and_options_come_from_hints_and_arguments():
    assert a_to_b.id == "a_to_b"
    assert a_to_b.input.type is A and a_to_b.output.type is B
    assert configured.id == "other"
    assert configured.output.type == list[int]
    assert (configured.retries, configured.timeout, configured.pool) == (3, 5, "narrow")
    assert configured.backoff == Backoff(initial=2.0)
    assert untyped.input.type is Any and untyped.output.type is Any


@pytest.mark.parametrize(
    "make",
    [
        lambda: step(42),
        lambda: step(lambda: None),  # no context parameter
        lambda: step(id="not valid!")(lambda ctx: None),
        lambda: step(retries=-1)(lambda ctx: None),
        lambda: step(timeout=0)(lambda ctx: None),
    ],
)
def test_step__bad_declarations_raise_definition_error(make):
    with pytest.raises(WorkflowDefinitionError):
        make()


def _plain(ctx, data):
    return data


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda w: w.commit(), "has no steps"),
        (lambda w: w.parallel([a_to_b, a_to_b]), "Duplicate step ids"),
        (lambda w: w.then(_plain), "decorate it with @step"),
        (lambda w: w.then(123), "expects a @step"),
        (lambda w: w.parallel([]), "non-empty list"),
        (lambda w: w.branch([(True, a_to_b)]), "needs a function"),
        (lambda w: w.branch([a_to_b]), r"\(condition, step\) pairs"),
        (lambda w: w.map("nope"), "needs a function"),
        (lambda w: w.then(step(id="p", pool="nowhere")(lambda ctx: 1)).commit(), "Unknown pool"),
    ],
)
def test_workflow__bad_definitions_raise_clear_errors(build, message):
    with pytest.raises(WorkflowDefinitionError, match=message):
        build(Workflow("bad-definition"))


def test_workflow__invalid_name_is_rejected():
    with pytest.raises(WorkflowDefinitionError):
        Workflow("has spaces")


def test_workflow__uncommitted_cannot_start_or_expose_graph():
    flow = Workflow("uncommitted-demo").then(a_to_b)
    with pytest.raises(WorkflowDefinitionError, match="not committed"):
        flow.start({"x": 1})
    with pytest.raises(WorkflowDefinitionError, match="not committed"):
        flow.graph  # noqa: B018


def test_workflow__committed_is_immutable_and_registered():
    flow = Workflow("immutable-demo", input=A).then(a_to_b).commit()
    with pytest.raises(WorkflowDefinitionError, match="committed"):
        flow.then(configured)
    assert registry.get("immutable-demo") is flow


def test_graph__serialises_to_json_with_schemas_and_the_options_the_author_wrote():
    flow = (
        Workflow("graph-demo", input=A, description="demo", retries=2)
        .then(a_to_b)
        .parallel([configured, untyped])
        .branch([(lambda c: c.data["other"] == [1], untyped)])
        .map(lambda c: {"n": 1}, id="reshape")
        .commit()
    )
    data = json.loads(json.dumps(flow.graph.to_json()))
    assert [b["kind"] for b in data["blocks"]] == ["step", "parallel", "branch", "map"]
    assert data["input_schema"]["properties"]["x"]["type"] == "integer"
    first = data["blocks"][0]["steps"][0]
    assert first["id"] == "a_to_b" and first["retries"] == 2  # the workflow's retries=2
    assert first["pool"] is None and first["timeout"] is None  # settings defaults apply when the step runs
    assert first["output_schema"]["title"] == "B"
    other = data["blocks"][1]["steps"][0]
    assert other["retries"] == 3 and other["pool"] == "narrow" and other["timeout"] == 5
    assert data["blocks"][2]["conditions"] == ['lambda c: c.data["other"] == [1]']
    assert data["blocks"][3]["id"] == "reshape"


def test_graph__version_is_stable_and_changes_with_the_structure():
    def build(name, *steps):
        flow = Workflow(name, input=A)
        for s in steps:
            flow.then(s)
        return flow.commit()

    one = build("version-a", a_to_b)
    registry._flows.pop("version-a")
    same = build("version-a", a_to_b)
    registry._flows.pop("version-a")
    longer = build("version-a", a_to_b, configured)
    assert one.version == same.version
    assert one.version != longer.version


def test_registry__two_workflows_with_one_name_from_different_modules_conflict():
    Workflow("clash-demo").then(untyped).commit()
    other = Workflow("clash-demo").then(untyped)
    other._module = "somewhere.else"
    with pytest.raises(WorkflowDefinitionError, match="Two workflows"):
        other.commit()


def test_backoff__grows_exponentially_is_capped_and_jittered():
    fixed = Backoff(initial=1, factor=2, max=5, jitter=False)
    assert [fixed.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    jittered = Backoff(initial=4, factor=2, max=60, jitter=True)
    delays = [jittered.delay(2) for _ in range(200)]
    assert all(4 <= d <= 8 for d in delays) and len(set(delays)) > 1
