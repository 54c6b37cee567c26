"""Committed workflows by name, in this process (their rows in the database: ``store.workflow_rows``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import UnknownWorkflow, WorkflowDefinitionError

if TYPE_CHECKING:
    from .dsl import Workflow

_flows: dict[str, Workflow] = {}


def register(flow: Workflow) -> None:
    existing = _flows.get(flow.name)
    if existing is not None and existing is not flow and _origin(existing) != _origin(flow):
        raise WorkflowDefinitionError(
            f"Two workflows are named {flow.name!r} ({_origin(existing)} and {_origin(flow)})"
        )
    _flows[flow.name] = flow


def _origin(flow: Workflow) -> str:
    return getattr(flow, "_module", "?")


def get(name: str) -> Workflow:
    try:
        return _flows[name]
    except KeyError:
        raise UnknownWorkflow(f"No workflow named {name!r} is registered") from None


def all_workflows() -> list[Workflow]:
    return sorted(_flows.values(), key=lambda f: f.name)
