"""An agent on pydantic-ai's real OpenAI chat model and provider, pointed at the tests' OpenAI-compatible server
(``tests/fake_openai.py``) by ``WORKFLOWS_TEST_OPENAI_URL`` (worker processes) or ``point_at`` (in-process).

Its tools record each execution of their body in ``ToolExecution``: the crash tests count them.
"""

from __future__ import annotations

import os

from openai import AsyncOpenAI
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from workflows import Workflow
from workflows.agents import agent_step

from .models import ToolExecution


class Question(BaseModel):
    question: str


def http_model(url: str | None = None, timeout: float = 30) -> OpenAIChatModel:
    url = url or os.environ.get("WORKFLOWS_TEST_OPENAI_URL", "http://127.0.0.1:9/v1")
    client = AsyncOpenAI(
        base_url=url, api_key="test-key", max_retries=0, timeout=timeout
    )  # the step retries, not the SDK
    return OpenAIChatModel("fake-gpt", provider=OpenAIProvider(openai_client=client))


desk = Agent(http_model(), name="desk", instructions="You run the stock desk.")


def point_at(url: str) -> None:
    """Send the desk agent's requests to ``url`` (in-process tests: this process imported it before the server)."""
    desk._model = http_model(url)
    patient._model = http_model(url, timeout=600)


@desk.tool_plain
def check_stock(item: str) -> int:
    """How many of an item are in stock."""
    ToolExecution.objects.create(tool="check_stock", args={"item": item}, pid=os.getpid())
    return {"widget": 3, "gadget": 1}.get(item, 0)


@desk.tool_plain
def reserve(item: str, count: int) -> str:
    """Reserve items."""
    ToolExecution.objects.create(tool="reserve", args={"item": item, "count": count}, pid=os.getpid())
    return f"reserved {count} {item}"


# the agent named by its import path (``patient`` below is given as an Agent): the tests cover both forms
desk_step = agent_step(
    "tests.testapp.agent_http_flows:desk", id="desk", prompt=lambda c: c.data.question, retries=6, backoff=0.05,
    max_turns=10,
)  # fmt: skip
desk_flow = Workflow("agent-desk", input=Question).then(desk_step).commit()


# a patient client (the SDK would wait 600 s): only a cancel ends a request the provider does not answer
patient = Agent(http_model(timeout=600), name="patient")
patient_flow = (
    Workflow("agent-patient", input=Question)
    .then(agent_step(patient, id="ask", prompt=lambda c: c.data.question))
    .commit()
)
