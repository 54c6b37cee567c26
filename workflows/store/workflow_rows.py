"""The ``Workflow`` and ``WorkflowVersion`` rows of the committed workflows, and which versions have runs in flight.

``row_for`` reads the row each time (one indexed query) instead of trusting a per-process cache of row ids: a
flushed test database, a row deleted in the admin or another process's write all leave such a cache pointing at
rows that no longer exist (a foreign-key error at the next ``flow.start()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Count, Max

from ..definition import registry
from ..exceptions import UnknownWorkflow
from .models import RUN_ACTIVE, Run, WorkflowVersion
from .models import Workflow as WorkflowRow

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


def versions_in_flight(name: str) -> list[dict[str, Any]]:
    """Each version of the workflow that is committed in this process or has runs in flight, newest first:
    ``{"version", "in_flight", "deployed", "newest"}``. A deployed version with runs in flight must stay deployed;
    one without may be removed; one with runs in flight that is not deployed fails them at their next step."""
    counts = {
        version: (n, last)
        for version, n, last in Run.objects.filter(workflow__name=name, status__in=RUN_ACTIVE)
        .order_by()
        .values_list("version")
        .annotate(n=Count("pk"), last=Max("created_at"))
    }
    deployed = [f.version for f in reversed(registry.versions(name))]
    gone = sorted((v for v in counts if v not in deployed), key=lambda v: counts[v][1], reverse=True)
    return [
        {"version": v, "in_flight": counts.get(v, (0, None))[0], "deployed": v in deployed, "newest": i == 0}
        for i, v in enumerate(deployed)
    ] + [{"version": v, "in_flight": counts[v][0], "deployed": False, "newest": False} for v in gone]
