"""Eager execution is a per-workflow and per-step choice: ``Workflow(eager=False)`` and ``@step(isolated=True)``
give steps RQ jobs of their own while ``EAGER_SECONDS`` lets other workflows' jobs run their successors."""

import pytest
from pydantic_ai import Agent
from pydantic_ai.models.test import TestModel

from tests.testapp import eager_flows
from workflows import Workflow, WorkflowDefinitionError, step
from workflows.agents import agent_step
from workflows.definition.graph import compile_graph
from workflows.models import Run
from workflows.testing import drain


@pytest.fixture
def eager_on(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "EAGER_SECONDS": 60}  # eager without a time limit, even under load


def jobs_of(flow: Workflow) -> list[str]:
    run = flow.start([])
    drain()
    run = Run.objects.get(pk=run.pk)
    assert run.status == "succeeded", run.error
    assert all(run.output), run.output  # every step ran in an RQ job
    return run.output


def test_eager_choice__a_normal_workflow_runs_its_chain_in_one_job(engine_db, eager_on):
    first, second, third = jobs_of(eager_flows.eager_chain)
    assert first == second == third


def test_eager_choice__an_isolated_step_has_a_job_of_its_own_and_so_does_its_successor(engine_db, eager_on):
    first, alone, third = jobs_of(eager_flows.isolated_chain)
    assert len({first, alone, third}) == 3
    run = Run.objects.filter(workflow__name="isolated-chain").get()
    for path in ("alone", "third"):
        sr = run.step(path)
        assert sr.queued_at < sr.started_at  # enqueued, then claimed by its own job


def test_eager_choice__a_workflow_with_eager_false_runs_every_step_in_its_own_job(engine_db, eager_on):
    assert len(set(jobs_of(eager_flows.lazy_chain))) == 3


def test_eager_choice__the_flags_are_not_part_of_the_version():
    def body(ctx, data: int) -> int:
        return data

    plain = Workflow("versioned", input=int).then(step(body, id="s"))
    choices = Workflow("versioned", input=int, eager=False).then(step(body, id="s", isolated=True))
    plain, choices = compile_graph(plain, plain._specs), compile_graph(choices, choices._specs)
    assert plain.version == choices.version
    assert (plain.eager, choices.eager) == (True, False)


def test_eager_choice__an_agent_step_may_be_isolated():
    agent = Agent(TestModel())
    assert agent_step(agent, id="isolated_agent", prompt=lambda c: "hi", isolated=True).isolated
    assert not agent_step(agent, id="agent", prompt=lambda c: "hi").isolated


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_eager_choice__a_flag_that_is_not_a_bool_is_a_definition_error(bad):
    with pytest.raises(WorkflowDefinitionError, match="eager must be True or False"):
        Workflow("bad-eager", eager=bad)
    with pytest.raises(WorkflowDefinitionError, match="isolated must be True or False"):
        step(lambda ctx, data: data, id="bad_isolated", isolated=bad)
