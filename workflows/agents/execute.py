"""One execution of an agent step: the agent runs with its model and toolsets wrapped (``durable``), so that what
succeeded before is replayed, tool calls that need approval suspend the run, and the text streams live.

Imported by the step's body when it first runs (``step.agent_step``): it is what loads pydantic-ai into a worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections
from pydantic import BaseModel
from pydantic_ai.exceptions import ModelHTTPError, UsageLimitExceeded
from pydantic_ai.usage import UsageLimits

from ..definition.context import Context, StepContext
from ..exceptions import NonRetryableError
from . import context as agent_typing
from .durable import DurableModel, DurableToolset, Recorder, TurnLimitExceeded, db, dump_messages, load_messages

# HTTP statuses a retry cannot fix (bad request, auth, not found…); 408, 409, 425, 429 and 5xx are retried
PERMANENT = {400, 401, 402, 403, 404, 405, 406, 410, 411, 413, 414, 415, 422}


@dataclass(frozen=True)
class Options:
    """What ``agent_step`` was given, besides the agent (see its docstring)."""

    prompt: Callable[[Context], Any]
    output: Any
    typed: bool  # c.data typed like a condition's (no ``input=`` given)
    thread: Callable[[Context], str | None] | None
    max_turns: int | None
    approval: frozenset[str]
    max_tokens_per_run: int | None
    tool_pool: str | None


async def run_agent(agent: Any, options: Options, ctx: StepContext, data: Any) -> Any:
    """Run ``agent`` on the prompt for this step attempt; its output, or StepSuspended for a tool to approve."""
    await db(close_old_connections)
    c = await db(agent_typing.context_for, ctx, data, options.typed)
    thread_key = (options.thread(c) or "") if options.thread else ""
    recorder = Recorder(
        ctx=ctx, approval=options.approval, recorded=await db(agent_typing.recorded, ctx),
        thread=str(thread_key)[:200], budget=options.max_tokens_per_run, tool_pool=options.tool_pool or "",
    )  # fmt: skip
    decision = ctx.resume_data.model_dump() if isinstance(ctx.resume_data, BaseModel) else ctx.resume_data
    if isinstance(ctx.suspend_payload, dict) and isinstance(decision, dict):
        recorder.decision = {**decision, "tool_call_id": ctx.suspend_payload.get("tool_call_id")}
    history = None
    if recorder.thread:
        upto = agent_typing.history_upto(recorder.recorded, ctx.path)
        raw, recorder.history_upto = await db(agent_typing.thread_history, recorder.thread, upto, ctx)
        history = load_messages(raw) or None
    model = DurableModel(agent.model, recorder)
    toolsets = [DurableToolset(ts, recorder) for ts in agent.toolsets]
    limits = UsageLimits(request_limit=options.max_turns)
    kwargs: dict[str, Any] = {"message_history": history, "usage_limits": limits}
    if options.output is not None:
        kwargs["output_type"] = options.output
    try:
        with agent.override(model=model, tools=[], toolsets=toolsets):
            result = await agent.run(options.prompt(c), **kwargs)
    except UsageLimitExceeded as exc:
        raise TurnLimitExceeded(f"Agent step {ctx.path!r} reached max_turns={options.max_turns}: {exc}") from exc
    except ModelHTTPError as exc:
        if exc.status_code in PERMANENT:
            raise NonRetryableError(f"The model provider refused the request: {exc}") from exc
        raise
    except Exception:
        if recorder.asked:
            _suspend(ctx, recorder)
        raise
    finally:
        await db(agent_typing.close_open, ctx)
    if recorder.asked:  # a tool call waits for approval though the agent got to an end (it swallowed it)
        _suspend(ctx, recorder)
    messages = result.all_messages()
    last = max((i for i, m in enumerate(messages) if m.kind == "response"), default=len(messages) - 1)
    if messages[last + 1 :]:
        await db(agent_typing.add_final, ctx, recorder.thread, dump_messages(messages[last + 1 :]))
    return result.output


def _suspend(ctx: StepContext, recorder: Recorder) -> None:
    payload = min(recorder.asked, key=lambda a: a[0])[1]
    ctx.suspend(payload, label=f"approve {payload['tool']}")
