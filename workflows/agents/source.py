"""The agent of one ``agent_step``: the pydantic-ai ``Agent`` given, or one named by its import path.

``agent_step("myapp.agents:support", ...)`` defines the step without importing the agent's module, so a worker
that registers the workflow but runs none of its agent steps never loads pydantic-ai (tens of MB per process).
The path is resolved and cached when a step first needs the agent (its first execution, the run page's approval
form, ``manage.py check``). Nothing here imports pydantic-ai at module level.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterable
from typing import Any

from ..exceptions import NonRetryableError, WorkflowDefinitionError

PATH_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class AgentPathError(WorkflowDefinitionError, NonRetryableError):
    """An agent_step's agent path does not name a pydantic-ai Agent that fits the step.

    A WorkflowDefinitionError where the step is defined or checked; non-retryable where the step runs (its first
    execution resolves the path): retrying cannot make a missing module appear.
    """


class AgentSource:
    """The agent of the step ``step_id``; ``get()`` returns it (importing a path's module on first call)."""

    def __init__(self, agent: Any, step_id: str, approval: Iterable[str] = ()) -> None:
        self.step_id = step_id
        self.approval = frozenset(approval)
        self.path: str | None = agent if isinstance(agent, str) else None
        self._agent: Any = None
        self._tools: dict[str, Any] | None = None
        if self.path is None:
            self._adopt(agent, WorkflowDefinitionError)  # an instance: checked at once, as before paths existed
        else:
            self._check_path()

    @property
    def name(self) -> str:
        """What the step's default description names: the agent's name, or its path while not imported."""
        return self.path if self._agent is None else (getattr(self._agent, "name", "") or "")

    def get(self) -> Any:
        """The ``Agent``; AgentPathError naming the path if it does not resolve to one that fits the step."""
        if self._agent is None:
            self._adopt(self._import(), AgentPathError)
        return self._agent

    def tools(self) -> dict[str, Any]:
        """The agent's function tools by name (what ``approval`` may name; their argument schemas)."""
        self.get()
        return self._tools or {}

    def _check_path(self) -> None:
        """What can be checked without importing the module: the path's form and that its module exists."""
        if not PATH_RE.match(self.path):
            why = "is not of the form 'package.module:attribute'"
            raise AgentPathError(f"agent_step {self.step_id!r}: the agent path {self.path!r} {why}")
        module = self.path.partition(":")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError as exc:  # a parent package is missing (or fails to import)
            raise self._error(f"cannot import {module!r}: {exc}") from exc
        if not found:
            raise self._error(f"no module named {module!r}")

    def _import(self) -> Any:
        module_name, _, attribute = self.path.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise self._error(f"cannot import {module_name!r}: {exc}") from exc
        for part in attribute.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise self._error(f"{module_name!r} has no attribute {attribute!r}") from None
        return target

    def _adopt(self, agent: Any, error: type[WorkflowDefinitionError]) -> None:
        from pydantic_ai import Agent  # the agent is about to run (or was given): pydantic-ai is loaded anyway
        from pydantic_ai.toolsets.function import FunctionToolset

        if self.path is not None and not isinstance(agent, Agent):
            raise self._error(f"it is a {type(agent).__name__}, not a pydantic_ai.Agent")
        tools: dict[str, Any] = {}
        for toolset in agent.toolsets:
            if isinstance(toolset, FunctionToolset):
                tools.update(toolset.tools)
        unknown = self.approval - set(tools)
        if unknown:
            named = f" (the agent path {self.path!r})" if self.path else ""
            raise error(f"agent_step {self.step_id!r}: approval names unknown tools {sorted(unknown)}{named}")
        self._agent, self._tools = agent, tools

    def _error(self, why: str) -> AgentPathError:
        return AgentPathError(f"agent_step {self.step_id!r}: the agent path {self.path!r} does not resolve: {why}")
