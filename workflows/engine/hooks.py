"""Completion hooks: ``Workflow(on_success=, on_failure=, on_finish=)``, run as steps of a run that has ended.

The run's status, output and error are decided when its body ends and never change afterwards: a hook that fails
does not fail the run. The hooks' rows are created in the transaction that ends the run, so a crash can neither
lose a hook nor create it twice; from there they are ordinary steps of that run (admitted into their pools,
leased, retried, journaled and drawn like any other; the recovery loop admits them if their dispatch was lost).
A step row marks its hook in ``StepRun.hook`` ("success", "failure" or "finish"): the watchdog lets such a step
run although its run has ended, and a failure for good is journaled as ``hook_failed`` instead of ending the run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..exceptions import WorkflowVersionError
from ..store.journal import Journal
from ..store.models import Run
from .advance import spawn
from .core import graph_for

if TYPE_CHECKING:
    from ..definition.graph import Graph

log = logging.getLogger("workflows.engine")


def data_for(run: Run, on: str) -> Any:
    """What a hook receives: the run's output (on_success), its error (on_failure), or both with its status."""
    if on == "success":
        return run.output
    if on == "failure":
        return run.error
    return {"status": run.status, "output": run.output, "error": run.error}


def schedule(run: Run, journal: Journal, graph: Graph | None = None) -> None:
    """Inside the transaction that ended ``run``: create the rows of the hooks its end calls for."""
    if graph is None:
        try:
            graph = graph_for(run)
        except WorkflowVersionError:  # the run failed for this very reason: its hooks are unknown here
            log.warning("run %s ended on a version not deployed here: its completion hooks cannot run", run.pk)
            return
    for block in graph.hooks_for(run.status):
        on = block.options["on"]
        journal.add("hook_scheduled", block.id, on=on)
        spawn(run, block, block.nodes[0], block.id, data_for(run, on), journal, hook=on)


def failed(journal: Journal, path: str, error: dict[str, Any]) -> None:
    """A hook failed for good: said in the journal; the run keeps the status its body gave it."""
    journal.add("hook_failed", path, error=error)
