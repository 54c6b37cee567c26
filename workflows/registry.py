"""Committed workflows by name, and their rows in the database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .exceptions import UnknownWorkflow, WorkflowDefinitionError

if TYPE_CHECKING:
    from .dsl import Workflow

log = logging.getLogger(__name__)
_flows: dict[str, Workflow] = {}
_synced: dict[str, tuple[str, int]] = {}  # name -> (version, Workflow row id) this process has written


def register(flow: Workflow) -> None:
    existing = _flows.get(flow.name)
    if existing is not None and existing is not flow and _origin(existing) != _origin(flow):
        raise WorkflowDefinitionError(
            f"Two workflows are named {flow.name!r} ({_origin(existing)} and {_origin(flow)})"
        )
    _flows[flow.name] = flow
    _synced.pop(flow.name, None)


def _origin(flow: Workflow) -> str:
    return getattr(flow, "_module", "?")


def get(name: str) -> Workflow:
    try:
        return _flows[name]
    except KeyError:
        raise UnknownWorkflow(f"No workflow named {name!r} is registered") from None


def all_workflows() -> list[Workflow]:
    return sorted(_flows.values(), key=lambda f: f.name)


def row_for(flow: Workflow) -> int:
    """Id of the flow's ``Workflow`` row, created or updated to the flow's current version."""
    from .models import Workflow as WorkflowRow
    from .models import WorkflowVersion

    cached = _synced.get(flow.name)
    if cached and cached[0] == flow.version:
        return cached[1]
    graph = flow.graph
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
    _synced[flow.name] = (graph.version, row.pk)
    return row.pk


def sync_all() -> None:
    for flow in all_workflows():
        row_for(flow)


def autodiscover() -> None:
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("flows")
