"""Agent steps in every kind of block: ``then``, ``parallel``, ``branch``, ``foreach``, ``dowhile``/``dountil``.

The echo agent looks its input up with a tool, then answers ``"<label>: <looked up>"``; its model script counts
its calls in ``agent_flows.MODEL_CALLS["echo"]`` (a replayed request does not call it).
"""

from __future__ import annotations

from pydantic_ai import Agent, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from workflows import Workflow
from workflows.agents import agent_step

from .agent_flows import FAIL_ONCE, MODEL_CALLS, _returns


def echo_script(messages, info: AgentInfo) -> ModelResponse:
    MODEL_CALLS["echo"] += 1
    returns = _returns(messages)
    if returns and returns[-1].content in FAIL_ONCE:  # the provider fails once, at this input's second request
        FAIL_ONCE.discard(returns[-1].content)
        raise ConnectionError("the provider is down")
    if not returns:
        prompt = messages[-1].parts[-1].content
        return ModelResponse(parts=[ToolCallPart("look_up", {"text": prompt}, tool_call_id="call-look")])
    return ModelResponse(parts=[TextPart(f"echo: {returns[-1].content}")])


echo = Agent(FunctionModel(echo_script), name="echo")


@echo.tool_plain
def look_up(text: str) -> str:
    """Look a text up."""
    return text.upper()


def echo_step(id: str, prompt=lambda c: str(c.data)):
    return agent_step(echo, id=id, prompt=prompt, retries=2, backoff=0.01)


then_flow = Workflow("agent-in-then", input=str).then(echo_step("answer")).commit()
parallel_flow = Workflow("agent-in-parallel", input=str).parallel([echo_step("left"), echo_step("right")]).commit()
branch_flow = (
    Workflow("agent-in-branch", input=str)
    .branch([(lambda c: c.data == "yes", echo_step("agreed")), (lambda c: c.data != "yes", echo_step("refused"))])
    .commit()
)
foreach_flow = Workflow("agent-in-foreach", input=list[str]).foreach(echo_step("answer"), concurrency=2).commit()
dowhile_flow = (
    Workflow("agent-in-dowhile", input=str)
    .dowhile(echo_step("answer", prompt=lambda c: f"{c.data} {c.iteration}"), lambda c: c.iteration < 3)
    .commit()
)
dountil_flow = (
    Workflow("agent-in-dountil", input=str)
    .dountil(echo_step("answer", prompt=lambda c: f"{c.data} {c.iteration}"), lambda c: c.iteration >= 2)
    .commit()
)


# --- a model request that hangs: cancel must stop it ------------------------------------------------------------

HANG = {"started": None, "returned": False}  # set by the hanging model: a threading.Event, and whether it answered


async def hang_script(messages, info: AgentInfo) -> ModelResponse:
    import asyncio

    HANG["started"].set()
    await asyncio.sleep(120)  # a provider that does not answer
    HANG["returned"] = True
    return ModelResponse(parts=[TextPart("too late")])


hanger = Agent(FunctionModel(hang_script), name="hanger")
hang_flow = Workflow("agent-hang", input=str).then(agent_step(hanger, id="hang", prompt=lambda c: c.data)).commit()
