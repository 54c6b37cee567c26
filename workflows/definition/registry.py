"""Committed workflows by name and version, in this process (their rows in the database: ``store.workflow_rows``).

A name may have several versions committed at once (``Workflow("order", version="1")`` and ``version="2"``): runs
in flight continue on their own version while it is committed, new runs start on the newest. The newest is the
version committed last (committing a version again makes it the newest again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import UnknownWorkflow, WorkflowDefinitionError

if TYPE_CHECKING:
    from .dsl import Workflow

_flows: dict[str, dict[str, Workflow]] = {}  # name -> {version: flow}, in the order committed (the last: newest)


def register(flow: Workflow) -> None:
    """Add a committed workflow as the newest version of its name.

    The same version committed again replaces the earlier definition (a module imported again; a step's body may
    have changed, its structure has not). One explicit ``version=`` given to two different structures from two
    modules is a WorkflowDefinitionError: one of them needs another version.
    """
    versions = _flows.setdefault(flow.name, {})
    existing = versions.pop(flow.version, None)
    if (
        existing is not None
        and existing is not flow
        and existing.graph.fingerprint != flow.graph.fingerprint
        and _origin(existing) != _origin(flow)
    ):
        versions[flow.version] = existing
        raise WorkflowDefinitionError(
            f"Two different workflows are named {flow.name!r} with version {flow.version!r} "
            f"({_origin(existing)} and {_origin(flow)}): give the new definition another version"
        )
    versions[flow.version] = flow


def unregister(flow: Workflow) -> None:
    """Remove this version of the workflow from the process (what deploying code without it does)."""
    versions = _flows.get(flow.name, {})
    if versions.get(flow.version) is flow:
        del versions[flow.version]
    if not versions:
        _flows.pop(flow.name, None)


def _origin(flow: Workflow) -> str:
    return getattr(flow, "_module", "?")


def get(name: str, version: str | None = None) -> Workflow:
    """The newest committed version of the workflow, or the given ``version``; UnknownWorkflow if not committed."""
    versions = _flows.get(name)
    if not versions:
        raise UnknownWorkflow(f"No workflow named {name!r} is registered")
    if version is None:
        return next(reversed(versions.values()))
    try:
        return versions[version]
    except KeyError:
        raise UnknownWorkflow(
            f"Version {version} of workflow {name!r} is not deployed here (deployed: {', '.join(versions)})"
        ) from None


def versions(name: str) -> list[Workflow]:
    """Every committed version of the workflow, oldest first (the last is the newest); [] for an unknown name."""
    return list(_flows.get(name, {}).values())


def all_workflows() -> list[Workflow]:
    """The newest version of every committed workflow, by name."""
    return [get(name) for name in sorted(_flows) if _flows[name]]
