"""Workflows for the eager-execution choices (``Workflow(eager=)``, ``@step(isolated=True)``).

Each step appends the id of the RQ job it runs in to its input list, so a run's output says which steps shared a
job (eager execution) and which had one of their own. ``worker-modules`` reports what a worker process imported.
"""

import sys

import rq

from workflows import StepContext, Workflow, step


def _job_ids(ctx: StepContext, data: list[str]) -> list[str]:
    job = rq.get_current_job()
    return [*data, job.id if job else ""]


first = step(_job_ids, id="first")
second = step(_job_ids, id="second")
third = step(_job_ids, id="third")
alone = step(_job_ids, id="alone", isolated=True)

eager_chain = Workflow("eager-chain", input=list[str]).then(first).then(second).then(third).commit()
isolated_chain = Workflow("isolated-chain", input=list[str]).then(first).then(alone).then(third).commit()
lazy_chain = Workflow("lazy-chain", input=list[str], eager=False).then(first).then(second).then(third).commit()


@step
def loaded(ctx: StepContext, prefixes: list[str]) -> list[str]:
    """The modules among ``prefixes`` (and their submodules) that the process running this step has imported."""
    return sorted(m for m in list(sys.modules) if any(m == p or m.startswith(p + ".") for p in prefixes))


worker_modules = Workflow("worker-modules", input=list[str]).then(loaded).commit()
