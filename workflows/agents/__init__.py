"""Agents on the workflow engine: ``agent_step`` runs a pydantic-ai agent as a durable step.

Needs ``pydantic-ai-slim`` (``pip install django-live-workflows[agents]``).
"""

from .durable import NonDeterministicAgent, TokenBudgetExceeded, TurnLimitExceeded
from .step import Decision, agent_step

__all__ = ["Decision", "NonDeterministicAgent", "TokenBudgetExceeded", "TurnLimitExceeded", "agent_step"]
