import json
import textwrap
from typing import Any

import pytest
from pydantic import BaseModel

from workflows import Backoff, StepContext, UnknownWorkflow, Workflow, WorkflowDefinitionError, step
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


@pytest.fixture
def committed():
    """``committed(flow)`` commits a flow built in the test and takes its name out of the registry afterwards."""
    names = set()

    def commit(flow: Workflow) -> Workflow:
        names.add(flow.name)
        return flow.commit()

    yield commit
    for name in names:
        registry._flows.pop(name, None)


def test_version__two_lambdas_on_one_line_differ_and_editing_the_second_changes_it(committed):
    def build(threshold):
        conditions = {
            10: [(lambda c: c.data.x > 10, a_to_b), (lambda c: c.data.x <= 10, untyped)],
            11: [(lambda c: c.data.x > 10, a_to_b), (lambda c: c.data.x <= 11, untyped)],
        }
        return committed(Workflow("lambdas-demo", input=A).branch(conditions[threshold]))

    first, edited = build(10), build(11)
    drawn = first.graph.to_json()["blocks"][0]["conditions"]
    assert drawn == ["lambda c: c.data.x > 10", "lambda c: c.data.x <= 10"]  # each its own lambda, not the first
    assert edited.graph.to_json()["blocks"][0]["conditions"][1] == "lambda c: c.data.x <= 11"
    codes = first.graph.blocks[0].to_json(readable=False)["conditions"]  # what the version covers
    assert codes[0] != codes[1] and codes[0] == edited.graph.blocks[0].to_json(readable=False)["conditions"][0]
    assert first.version != edited.version
    assert build(10).version == first.version


def over_ten(c):
    return c.data.x > 10


def test_version__moving_a_function_keeps_it(committed):
    blank_lines = "\n" * 40  # the same function, 40 lines further down and in another file
    elsewhere: dict[str, Any] = {}
    exec(compile(blank_lines + textwrap.dedent('''
        def over_ten(c):
            """A docstring says nothing about what the code does."""
            return c.data.x > 10
    '''), "moved.py", "exec"), elsewhere)  # fmt: skip

    here = committed(Workflow("moved-demo", input=A).branch([(over_ten, a_to_b), (lambda c: c.data.x < 0, untyped)]))
    moved = committed(
        Workflow("moved-demo", input=A).branch([(elsewhere["over_ten"], a_to_b), (lambda c: c.data.x < 0, untyped)])
    )
    assert here.version == moved.version
    assert here.graph.to_json()["blocks"][0]["conditions"][0].endswith("over_ten")


def test_version__a_captured_value_or_a_constant_sleep_is_part_of_it(committed):
    def build(limit, seconds):
        return committed(
            Workflow("captured-demo", input=A).dowhile(a_to_b, lambda c: c.iteration < limit).sleep(seconds)
        )

    first = build(3, 60)
    assert build(3, 60).version == first.version
    assert build(4, 60).version != first.version
    assert build(3, 30).version != first.version
    assert first.graph.to_json()["blocks"][1]["source"] == "60"  # what the drawing shows


def test_version__descriptions_are_not_part_of_it(committed):
    described = step(id="a_to_b", description="converts")(a_to_b.fn)
    one = committed(Workflow("described-demo", input=A, description="one").then(a_to_b))
    other = committed(Workflow("described-demo", input=A, description="other").then(described))
    assert one.version == other.version
    assert other.graph.to_json()["blocks"][0]["steps"][0]["description"] == "converts"


def test_version__a_settings_only_change_keeps_it(committed, settings):
    def build():
        return committed(Workflow("settings-demo", input=A).then(a_to_b).then(configured))

    before = build()
    version = before.version
    settings.WORKFLOWS = {**settings.WORKFLOWS, "DEFAULT_RETRIES": 7, "DEFAULT_POOL": "narrow"}
    assert before.version == version  # the definition already compiled
    after = build()  # and the same one compiled under the new settings
    assert after.version == version
    from workflows.engine import policy

    node = after.graph.blocks[0].nodes[0]
    assert (node.retries, node.pool) == (None, None)  # not given: the settings apply when the step runs
    assert (policy.retries(node), policy.pool(node)) == (7, "narrow")


def test_version__an_explicit_version_is_the_version(committed):
    flow = committed(Workflow("explicit-demo", input=A, version="2").then(a_to_b))
    assert flow.version == "2" and flow.graph.to_json()["version"] == "2"
    assert flow.graph.fingerprint and flow.graph.fingerprint != "2"
    parent = committed(Workflow("explicit-parent", input=A).then(flow))
    assert parent.graph.to_json()["blocks"][0]["steps"][0]["version"] == "2"
    assert Workflow("explicit-demo", version=3).then(a_to_b).commit().version == "3"


@pytest.mark.parametrize("version", ["", "two words", "../2", "v" * 33, "-1", True, 2.5])
def test_version__an_invalid_explicit_version_is_rejected(version):
    with pytest.raises(WorkflowDefinitionError, match="invalid version"):
        Workflow("bad-version-demo", version=version)


def test_registry__keeps_every_committed_version_of_a_name_the_last_committed_is_the_newest(committed):
    one = committed(Workflow("registry-demo", version="1").then(untyped))
    two = committed(Workflow("registry-demo", version="2").then(untyped).then(untyped))
    assert registry.get("registry-demo") is two and registry.get("registry-demo", version="1") is one
    assert registry.versions("registry-demo") == [one, two]
    assert registry.all_workflows().count(two) == 1 and one not in registry.all_workflows()
    with pytest.raises(UnknownWorkflow, match="Version 3 of workflow 'registry-demo' is not deployed"):
        registry.get("registry-demo", version="3")
    registry.unregister(two)
    assert registry.get("registry-demo") is one


def test_registry__one_version_of_two_different_structures_from_two_modules_conflicts(committed):
    committed(Workflow("clash-demo", version="1").then(untyped))
    same = Workflow("clash-demo", version="1").then(untyped)
    same._module = "somewhere.else"
    assert committed(same) is registry.get("clash-demo", version="1")  # the same structure again: replaced
    other = Workflow("clash-demo", version="1").then(untyped).then(untyped)
    other._module = "a.third.module"
    with pytest.raises(WorkflowDefinitionError, match="Two different workflows are named 'clash-demo' with version"):
        committed(other)
    assert registry.get("clash-demo") is same


def test_backoff__grows_exponentially_is_capped_and_jittered():
    fixed = Backoff(initial=1, factor=2, max=5, jitter=False)
    assert [fixed.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    jittered = Backoff(initial=4, factor=2, max=60, jitter=True)
    delays = [jittered.delay(2) for _ in range(200)]
    assert all(4 <= d <= 8 for d in delays) and len(set(delays)) > 1
