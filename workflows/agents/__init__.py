"""Agents on the workflow engine: ``agent_step`` runs a pydantic-ai agent as a durable step.

The names below load on first use (PEP 562), and none of them imports pydantic-ai until an agent step runs
(``step``): a process that registers agent workflows but runs none of their agent steps never loads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .durable import NonDeterministicAgent, TokenBudgetExceeded, TurnLimitExceeded
    from .source import AgentPathError
    from .step import Decision, agent_step

__all__ = [
    "AgentPathError",
    "Decision",
    "NonDeterministicAgent",
    "TokenBudgetExceeded",
    "TurnLimitExceeded",
    "agent_step",
]
_HOMES = {"AgentPathError": ".source", "Decision": ".step", "agent_step": ".step"}
_HOMES |= dict.fromkeys(["NonDeterministicAgent", "TokenBudgetExceeded", "TurnLimitExceeded"], ".durable")


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
