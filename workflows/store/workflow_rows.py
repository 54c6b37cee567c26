"""The ``Workflow`` and ``WorkflowVersion`` rows of the committed workflows.

``row_for`` reads the row each time (one indexed query) instead of trusting a per-process cache of row ids: a
flushed test database, a row deleted in the admin or another process's write all leave such a cache pointing at
rows that no longer exist (a foreign-key error at the next ``flow.start()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..definition import registry
from ..exceptions import UnknownWorkflow
from .models import Workflow as WorkflowRow
from .models import WorkflowVersion

if TYPE_CHECKING:
    from ..definition.dsl import Workflow


def row_for(flow: Workflow) -> int:
    """Id of the workflow's one ``Workflow`` row (runs of every version point at it), brought up to the newest
    committed version; the flow's own version (possibly an older one still deployed) is kept in WorkflowVersion."""
    newest = _newest(flow)
    found = WorkflowRow.objects.filter(name=flow.name).values_list("pk", "version").first()
    if found and found[1] == newest.version:
        row_id = found[0]
    else:
        graph = newest.graph.to_json()
        row, _ = WorkflowRow.objects.update_or_create(
            name=flow.name,
            defaults={
                "description": newest.description,
                "version": newest.version,
                "graph": graph,
                "input_schema": graph["input_schema"],
                "output_schema": graph["output_schema"],
            },
        )
        WorkflowVersion.objects.get_or_create(workflow=row, version=newest.version, defaults={"graph": graph})
        row_id = row.pk
    if flow.version != newest.version:  # a run of an older version: one more query, for its drawing
        WorkflowVersion.objects.get_or_create(
            workflow_id=row_id, version=flow.version, defaults={"graph": flow.graph.to_json()}
        )
    return row_id


def _newest(flow: Workflow) -> Workflow:
    try:
        return registry.get(flow.name)
    except UnknownWorkflow:  # a flow taken out of the registry (as undeploying does) that still starts a run
        return flow


def sync_all() -> None:
    for flow in registry.all_workflows():
        for version in registry.versions(flow.name):
            row_for(version)
