"""Agent workflows of the agent tests: a support desk agent on a scripted ``FunctionModel``.

The model's script reads the conversation: first it looks the order up, then proposes a refund (a tool that
needs approval), then answers with what the refund tool returned. ``MODEL_CALLS`` counts the script's calls
(in-process tests only): a replayed request does not call it.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from pydantic import BaseModel
from pydantic_ai import Agent, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from workflows import Workflow
from workflows.agents import agent_step

from .models import ToolExecution

MODEL_CALLS: Counter = Counter()
FAIL_ONCE: set[str] = set()  # scripts that raise once at their second request ("provider down")


class Ticket(BaseModel):
    question: str
    order_id: str = "A1"
    customer: str = "customer-42"


class Verdict(BaseModel):
    category: str
    urgent: bool


def _returns(messages) -> list[ToolReturnPart]:
    return [p for m in messages if m.kind == "request" for p in m.parts if isinstance(p, ToolReturnPart)]


def support_script(messages, info: AgentInfo) -> ModelResponse:
    MODEL_CALLS["support"] += 1
    returns = _returns(messages)
    responses = sum(1 for m in messages if m.kind == "response")
    if "support" in FAIL_ONCE and responses == 1:
        FAIL_ONCE.discard("support")
        raise ConnectionError("the provider is down")
    if not returns:
        prompt = messages[-1].parts[-1].content
        order = json.loads(prompt)["order_id"]
        return ModelResponse(parts=[ToolCallPart("lookup_order", {"order_id": order}, tool_call_id="call-lookup")])
    last = returns[-1]
    if last.tool_name == "lookup_order":
        order = last.content
        return ModelResponse(
            parts=[
                TextPart("I will refund it."),
                ToolCallPart("refund", {"order_id": order["id"], "amount": order["total"]}, tool_call_id="call-refund"),
            ]
        )
    return ModelResponse(parts=[TextPart(f"Answer: {last.content}")])


support = Agent(FunctionModel(support_script), name="support", instructions="You help customers.")


@support.tool_plain
def lookup_order(order_id: str) -> dict:
    """Look an order up."""
    ToolExecution.objects.create(tool="lookup_order", args={"order_id": order_id}, pid=os.getpid())
    return {"id": order_id, "total": 30.0, "status": "delivered"}


@support.tool_plain
def refund(order_id: str, amount: float) -> str:
    """Refund an order (needs a person's approval)."""
    ToolExecution.objects.create(tool="refund", args={"order_id": order_id, "amount": amount}, pid=os.getpid())
    return f"refunded {amount:g} on {order_id}"


# named by its import path (the other agents here are given as Agents): the tests cover both forms
answer = agent_step(
    "tests.testapp.agent_flows:support", id="answer", prompt=lambda c: c.data.model_dump_json(), pool="default",
    approval={"refund"}, retries=3, backoff=0.01,
)  # fmt: skip
support_flow = Workflow("agent-support", input=Ticket).then(answer).commit()


# --- structured output, usage, threads ------------------------------------------------------------------------


def classify_script(messages, info: AgentInfo) -> ModelResponse:
    MODEL_CALLS["classify"] += 1
    seen = [p.content for m in messages if m.kind == "request" for p in m.parts if p.part_kind == "user-prompt"]
    tool = info.output_tools[0]
    urgent = "now" in seen[-1]
    args = {"category": f"billing after {len(seen) - 1} earlier questions", "urgent": urgent}
    return ModelResponse(parts=[ToolCallPart(tool.name, args)])


classifier = Agent(FunctionModel(classify_script), name="classifier")
classify = agent_step(
    classifier, id="classify", prompt=lambda c: c.data.question, output=Verdict, thread=lambda c: c.data.customer
)
classify_flow = Workflow("agent-classify", input=Ticket).then(classify).commit()


# --- runaway loops and budgets --------------------------------------------------------------------------------


def loop_script(messages, info: AgentInfo) -> ModelResponse:
    MODEL_CALLS["loop"] += 1
    n = sum(1 for m in messages if m.kind == "response")
    return ModelResponse(parts=[ToolCallPart("again", {"n": n})])


looper = Agent(FunctionModel(loop_script), name="looper")


@looper.tool_plain
def again(n: int) -> int:
    """Ask again."""
    return n + 1


loop_flow = (
    Workflow("agent-loop", input=Ticket)
    .then(agent_step(looper, id="spin", prompt=lambda c: c.data.question, max_turns=4))
    .commit()
)
budget_flow = (
    Workflow("agent-budget", input=Ticket)
    .then(agent_step(looper, id="spend", prompt=lambda c: c.data.question, max_turns=50, max_tokens_per_run=300))
    .commit()
)


# --- tool_pool: tool calls hold slots of a pool of their own ----------------------------------------------------


def fan_out_script(messages, info: AgentInfo) -> ModelResponse:
    if not _returns(messages):
        return ModelResponse(parts=[ToolCallPart("slow_lookup", {"n": n}) for n in range(6)])
    return ModelResponse(parts=[TextPart(f"{len(_returns(messages))} lookups")])


fan_out = Agent(FunctionModel(fan_out_script), name="fan-out")


@fan_out.tool_plain
def slow_lookup(n: int) -> int:
    """A slow lookup; records how many run at once in Redis (``test:tools:overlap``)."""
    import time

    import redis
    from django.conf import settings

    r = redis.Redis.from_url(settings.REDIS_URL)
    r.rpush("test:tools:overlap", r.incr("test:tools:running"))
    time.sleep(0.2)
    r.decr("test:tools:running")
    ToolExecution.objects.create(tool="slow_lookup", args={"n": n}, pid=os.getpid())
    return n


fan_out_flow = (
    Workflow("agent-fan-out", input=Ticket)
    .then(agent_step(fan_out, id="fan", prompt=lambda c: c.data.question, tool_pool="narrow"))
    .commit()
)
