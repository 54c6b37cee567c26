"""Agents on the workflow engine: ``agent_step`` runs a pydantic-ai agent as a durable step.

The names below load on first use (PEP 562), so importing ``workflows.agents.sinks`` at start-up loads no
pydantic-ai in processes that never run an agent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .durable import NonDeterministicAgent, TokenBudgetExceeded, TurnLimitExceeded
    from .step import Decision, agent_step

__all__ = ["Decision", "NonDeterministicAgent", "TokenBudgetExceeded", "TurnLimitExceeded", "agent_step"]
_HOMES = {"Decision": ".step", "agent_step": ".step"} | dict.fromkeys(__all__[1:4], ".durable")


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name], __name__), name)
