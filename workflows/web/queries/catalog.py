"""The workflows the dashboard shows: those registered in this process (launchable), else their stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...definition import registry
from ...exceptions import UnknownWorkflow
from ...store.models import Workflow as WorkflowRow


@dataclass
class WorkflowInfo:
    """A workflow as the dashboard shows it: from the registry (launchable) or only its stored row."""

    name: str
    description: str
    version: str
    graph: dict[str, Any]
    input_schema: dict[str, Any]
    launchable: bool


def workflow_info(name: str) -> WorkflowInfo | None:
    if "\x00" in name:  # from a URL ("%00"): no such workflow, and PostgreSQL could not even look
        return None
    try:
        flow = registry.get(name)
    except UnknownWorkflow:
        row = WorkflowRow.objects.filter(name=name).first()
        if row is None:
            return None
        return WorkflowInfo(row.name, row.description, row.version, row.graph, row.input_schema or {}, False)
    return _info(flow)


def all_workflow_infos() -> list[WorkflowInfo]:
    return [_info(flow) for flow in registry.all_workflows()]


_graphs: dict[tuple[str, str], dict[str, Any]] = {}


def _info(flow: Any) -> WorkflowInfo:
    key = (flow.name, flow.version)
    graph = _graphs.get(key)
    if graph is None:  # to_json() reads condition sources and builds schemas: once per version and process
        graph = _graphs[key] = flow.graph.to_json()
    return WorkflowInfo(flow.name, flow.description, flow.version, graph, graph["input_schema"], True)


def form_schema(graph: dict[str, Any], input_schema: dict[str, Any]) -> dict[str, Any]:
    """The launch form's schema: the workflow's ``input=``, else (a workflow without one accepts any JSON) the
    input type of its first step, when that is a single step with a typed input: a form, not a JSON box."""
    if input_schema:
        return input_schema
    blocks = graph.get("blocks") or []
    steps = (blocks[0].get("steps") or []) if blocks and blocks[0].get("kind") == "step" else []
    if len(steps) == 1 and steps[0].get("kind") == "step":
        first = steps[0].get("input_schema") or {}
        if first.get("properties"):  # a model (not "any object"): its fields make the form
            return first
    return input_schema
