"""The support desk's two pydantic-ai agents (``examples/support_desk.py`` names them by path, so that a worker
imports this module, and pydantic-ai, only when it runs one of their steps). Offline by default: they run on
scripted ``FunctionModel``s, so the demo needs no key. With ``WORKFLOWS_DEMO_MODEL`` set (e.g.
``openai:gpt-4.1-mini``, with ``OPENAI_API_KEY`` and, for any OpenAI-compatible server, ``OPENAI_BASE_URL``) they
run on that model instead.
"""

from __future__ import annotations

import asyncio
import json
import os

from pydantic_ai import Agent, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

from .support_desk import ORDERS


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
