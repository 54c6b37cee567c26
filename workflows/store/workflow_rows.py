"""The ``Workflow`` and ``WorkflowVersion`` rows of the committed workflows.

``row_for`` reads the row each time (one indexed query) instead of trusting a per-process cache of row ids: a
flushed test database, a row deleted in the admin or another process's write all leave such a cache pointing at
rows that no longer exist (a foreign-key error at the next ``flow.start()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..definition import registry
from .models import Workflow as WorkflowRow
from .models import WorkflowVersion

if TYPE_CHECKING:
    from ..definition.dsl import Workflow


def row_for(flow: Workflow) -> int:
    """Id of the flow's ``Workflow`` row, created or updated to the flow's current version."""
    graph = flow.graph
    found = WorkflowRow.objects.filter(name=flow.name).values_list("pk", "version").first()
    if found and found[1] == graph.version:
        return found[0]
    row, _ = WorkflowRow.objects.update_or_create(
        name=flow.name,
        defaults={
            "description": flow.description,
            "version": graph.version,
            "graph": graph.to_json(),
            "input_schema": graph.input.json_schema(),
            "output_schema": graph.output.json_schema(),
        },
    )
    WorkflowVersion.objects.get_or_create(workflow=row, version=graph.version, defaults={"graph": row.graph})
    return row.pk


def sync_all() -> None:
    for flow in registry.all_workflows():
        row_for(flow)
