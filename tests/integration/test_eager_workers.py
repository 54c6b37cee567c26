"""Eager execution as a per-workflow and per-step choice, on a real worker process with eager execution on
(``EAGER_SECONDS`` 60: no time limit even under load): each step reports the id of the RQ job it ran in."""

from __future__ import annotations

import pytest

from tests.testapp import eager_flows
from workflows.models import RunStatus

from .conftest import FORKING, SIMPLE, finished

pytestmark = pytest.mark.integration
EAGER = {"WORKFLOWS_EAGER_SECONDS": "60"}


def job_ids(flow) -> list[str]:
    run = finished(flow.start([]))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert all(run.output), run.output
    return run.output


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
def test_eager_workers__isolated_steps_and_non_eager_workflows_get_jobs_of_their_own(start_workers, worker_class):
    start_workers(1, worker_class, env=EAGER)

    first, second, third = job_ids(eager_flows.eager_chain)
    assert first == second == third  # a normal workflow still runs its chain in one job

    first, alone, third = job_ids(eager_flows.isolated_chain)
    assert len({first, alone, third}) == 3  # the isolated step ran in a job of its own, and so did its successor

    assert len(set(job_ids(eager_flows.lazy_chain))) == 3  # eager=False: every step in a job of its own
