"""A support desk on an agent: classify a ticket, look the order up, propose a refund (a person approves it),
answer. Offline by default: the agents run on scripted pydantic-ai ``FunctionModel``s, so the demo needs no key.
With ``WORKFLOWS_DEMO_MODEL`` set (e.g. ``openai:gpt-4.1-mini``, with ``OPENAI_API_KEY`` and, for any
OpenAI-compatible server, ``OPENAI_BASE_URL``) they run on that model instead.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_ai import Agent, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from workflows import Workflow, WorkflowDefinitionError, conf
from workflows.agents import agent_step

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


def _model(script) -> object:
    """``WORKFLOWS_DEMO_MODEL`` when set (any pydantic-ai model name), else the offline script (streamed: its text
    comes a word at a time, every ``WORKFLOWS_DEMO_STREAM_DELAY`` seconds, as a real model's would)."""
    return os.environ.get("WORKFLOWS_DEMO_MODEL") or FunctionModel(script, stream_function=_streamed(script))


def _streamed(script):
    """A ``stream_function`` giving the script's response in pieces: its text word by word, then its tool calls."""

    async def stream(messages, info: AgentInfo):
        delay = float(os.environ.get("WORKFLOWS_DEMO_STREAM_DELAY", "0.04"))
        response = script(messages, info)
        for part in response.parts:
            if isinstance(part, TextPart):
                for i, word in enumerate(part.content.split(" ")):
                    yield word if i == 0 else f" {word}"
                    await asyncio.sleep(delay)
        calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
        for i, call in enumerate(calls):
            args = call.args_as_json_str()
            yield {i: DeltaToolCall(name=call.tool_name, json_args=args, tool_call_id=call.tool_call_id)}

    return stream


def _prompt_of(messages) -> str:
    return next(p.content for m in messages if m.kind == "request" for p in m.parts if p.part_kind == "user-prompt")


def triage_script(messages, info: AgentInfo) -> ModelResponse:
    text = _prompt_of(messages).lower()
    category = "refund" if "refund" in text or "broken" in text else "delivery" if "where" in text else "other"
    args = {"category": category, "urgent": "broken" in text}
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, args)])


def support_script(messages, info: AgentInfo) -> ModelResponse:
    returns = [p for m in messages if m.kind == "request" for p in m.parts if isinstance(p, ToolReturnPart)]
    ticket = json.loads(_prompt_of(messages))
    if not returns:
        return ModelResponse(parts=[ToolCallPart("lookup_order", {"order_id": ticket["order_id"]})])
    last = returns[-1]
    if last.tool_name == "lookup_order" and ticket["triage"]["category"] == "refund":
        order = last.content
        args = {"order_id": order["id"], "amount": order["total"], "reason": order["status"]}
        return ModelResponse(parts=[TextPart("Proposing a refund."), ToolCallPart("propose_refund", args)])
    if last.tool_name == "propose_refund":
        return ModelResponse(parts=[TextPart(f"Dear customer, thank you for your patience. {last.content}")])
    return ModelResponse(parts=[TextPart(f"Dear customer, your order is {last.content['status']}.")])


triage_agent = Agent(_model(triage_script), name="triage", instructions="Classify the support ticket.")
support_agent = Agent(
    _model(support_script),
    name="support",
    instructions="You answer a coffee shop's customers. Look the order up first. Propose a refund only for "
    "damaged or lost orders; a person approves it. Then answer the customer in two sentences.",
)


@support_agent.tool_plain
def lookup_order(order_id: str) -> dict:
    """Look an order up by its id."""
    return ORDERS.get(order_id, {"id": order_id, "item": "?", "total": 0.0, "status": "unknown"})


@support_agent.tool_plain
def propose_refund(order_id: str, amount: float, reason: str) -> str:
    """Refund an order (a person approves it first, and may change the amount)."""
    return f"A refund of {amount:.2f} EUR for order {order_id} is on its way."


triage = agent_step(
    triage_agent, id="triage", prompt=lambda c: c.data.message, output=Triage, pool=_llm_pool(), retries=3, max_turns=3
)
answer = agent_step(
    support_agent,
    id="answer",
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
