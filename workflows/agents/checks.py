"""``manage.py check`` resolves every agent path of the committed workflows (``agent_step("pkg.mod:attr")``).

Tagged apart from the app's own checks (``workflows.checks.TAG``), which worker processes run at start-up: a worker
imports an agent's module (and pydantic-ai) only when it runs one of its steps.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, register

from ..definition import registry
from .source import AgentPathError

TAG = "workflows_agents"


@register(TAG)
def check_agent_paths(app_configs: Any, **kwargs: Any) -> list:
    errors = []
    for flow in registry.all_workflows():
        for version in registry.versions(flow.name):
            for block in version.graph.blocks:
                for node in block.nodes:
                    source = getattr(node.step.fn, "agent_source", None) if node.step else None
                    if source is None or source.path is None:
                        continue
                    try:
                        source.get()
                    except AgentPathError as exc:
                        hint = "Name a module-level pydantic_ai.Agent as 'package.module:attribute'."
                        errors.append(Error(f"workflow {flow.name!r}: {exc}", hint=hint, id="workflows.E020"))
    return errors
