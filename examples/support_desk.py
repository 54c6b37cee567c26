"""A support desk on an agent: classify a ticket, look the order up, propose a refund (a person approves it),
answer. The agents are in ``support_desk_agents`` and named here by their import path: registering this workflow
imports no pydantic-ai, so a worker loads it only when it runs one of the agent steps.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from workflows import Workflow, WorkflowDefinitionError, conf
from workflows.agents import agent_step

AGENTS = "examples.support_desk_agents"  # imported when a worker first runs one of the agent steps
ORDERS = {
    "A-1001": {"id": "A-1001", "item": "espresso machine", "total": 249.0, "status": "delivered damaged"},
    "A-1002": {"id": "A-1002", "item": "coffee grinder", "total": 89.0, "status": "in transit"},
}


class Ticket(BaseModel):
    customer: str = Field(default="customer-42", description="Who wrote (their earlier tickets are remembered)")
    order_id: str = Field(default="A-1001", description="The order it is about")
    message: str = Field(default="My espresso machine arrived broken. I want a refund.", description="The ticket")


class Triage(BaseModel):
    category: Literal["refund", "delivery", "other"]
    urgent: bool


def _llm_pool() -> str | None:
    """The demo settings' ``llm`` pool (model quotas: 2 conversations at once); the default pool elsewhere."""
    try:
        conf.pool("llm")
    except WorkflowDefinitionError:
        return None
    return "llm"


triage = agent_step(
    f"{AGENTS}:triage_agent",
    id="triage",
    description="Classify the ticket (a pydantic-ai agent)",
    prompt=lambda c: c.data.message,
    output=Triage,
    pool=_llm_pool(),
    retries=3,
    max_turns=3,
)
answer = agent_step(
    f"{AGENTS}:support_agent",
    id="answer",
    description="Look the order up, propose a refund a person approves, answer (a pydantic-ai agent)",
    prompt=lambda c: json.dumps({**c.run_input.model_dump(), "triage": c.data.model_dump()}),
    pool=_llm_pool(),
    retries=3,
    timeout=300,
    approval={"propose_refund"},
    thread=lambda c: c.run_input.customer,
    max_turns=8,
    max_tokens_per_run=20_000,
)

support_desk = (
    Workflow("support-desk", input=Ticket, description="Triage a ticket, look the order up, propose a refund that "
             "a person approves, answer the customer: two pydantic-ai agents.")
    .then(triage)
    .then(answer)
    .commit()
)  # fmt: skip
