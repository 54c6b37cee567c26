"""``agent_step``: a pydantic-ai agent as a durable step; each model request and tool call a sub-step row."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from django.db import close_old_connections
from pydantic import BaseModel, ValidationError
from pydantic_ai.exceptions import ModelHTTPError, UsageLimitExceeded
from pydantic_ai.toolsets.function import FunctionToolset
from pydantic_ai.usage import UsageLimits

from .. import conf
from ..definition.backoff import Backoff
from ..definition.context import Context, StepContext
from ..definition.step import Step, step
from ..exceptions import InvalidInput, NonRetryableError, WorkflowDefinitionError
from . import context as agent_typing
from .durable import (
    DurableModel,
    DurableToolset,
    Recorder,
    TurnLimitExceeded,
    db,
    dump_messages,
    load_messages,
)

# HTTP statuses a retry cannot fix (bad request, auth, not found…); 408, 409, 425, 429 and 5xx are retried
PERMANENT = {400, 401, 402, 403, 404, 405, 406, 410, 411, 413, 414, 415, 422}


class Decision(BaseModel):
    """How ``run.resume(data=...)`` answers a tool call waiting for approval."""

    approved: bool
    reason: str | None = None
    args: dict[str, Any] | None = None  # approved with these arguments instead (checked against the tool's schema)


def _function_tools(agent: Any) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    for toolset in agent.toolsets:
        if isinstance(toolset, FunctionToolset):
            tools.update(toolset.tools)
    return tools


def agent_step(
    agent: Any,
    *,
    id: str,
    prompt: Callable[[Context], Any],
    output: Any = None,
    pool: str | None = None,
    tool_pool: str | None = None,
    retries: int | None = None,
    backoff: Backoff | float | None = None,
    timeout: float | None = None,
    max_turns: int | None = None,
    approval: Iterable[str] = (),
    thread: Callable[[Context], str | None] | None = None,
    max_tokens_per_run: int | None = None,
    input: Any = None,
    description: str | None = None,
    concurrency_key: Callable[[Context], Any] | None = None,
    key_limit: int | None = None,
    isolated: bool = False,
) -> Step:
    """A step that runs ``agent`` on ``prompt(c)``; its output is the agent's (validated against ``output``).

    Each model request and each tool call is recorded as its own step row (``<id>/model#1``,
    ``<id>/tool:lookup#1``) and never made twice: when the step runs again (a lost worker, a retry after a
    provider error, a resume after an approval) the agent replays what succeeded. ``approval`` names tools that
    suspend the run before they run; ``thread(c)`` names a conversation continued across runs; ``max_turns``
    bounds the model requests of one execution, ``max_tokens_per_run`` the tokens of the whole run.
    ``isolated=True``: the agent step runs in an RQ job of its own (as ``@step(isolated=True)``).
    """
    approval = frozenset(approval)
    tools = _function_tools(agent)
    unknown = approval - set(tools)
    if unknown:
        raise WorkflowDefinitionError(f"agent_step {id!r}: approval names unknown tools {sorted(unknown)}")
    if tool_pool is not None:
        conf.pool(tool_pool)  # WorkflowDefinitionError for a pool the settings do not have
    if tool_pool is not None and tool_pool == pool:
        raise WorkflowDefinitionError(f"agent_step {id!r}: tool_pool must differ from pool (the step holds a slot)")
    if max_turns is not None and max_turns < 1:
        raise WorkflowDefinitionError(f"agent_step {id!r}: max_turns must be >= 1")

    def check_resume(payload: Any, data: Any) -> None:
        """Edited arguments must fit the tool's schema (InvalidInput otherwise: the run stays suspended)."""
        if not isinstance(payload, dict) or not isinstance(data, dict) or data.get("args") is None:
            return
        tool = tools.get(payload.get("tool"))
        if tool is None:
            return
        try:
            tool.function_schema.validator.validate_python(data["args"])
        except ValidationError as exc:
            errors = [{"loc": ("args", *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise InvalidInput(f"arguments for tool {payload['tool']!r}: {exc}", errors=errors) from None

    # the run page's approval form edits a tool's arguments with a form generated from its schema
    check_resume.tool_schemas = {name: tools[name].function_schema.json_schema for name in approval}

    async def body(ctx: StepContext, data: Any) -> Any:
        await db(close_old_connections)
        c = await db(agent_typing.context_for, ctx, data, input is None)
        thread_key = (thread(c) or "") if thread else ""
        recorder = Recorder(
            ctx=ctx, approval=approval, recorded=await db(agent_typing.recorded, ctx), thread=str(thread_key)[:200],
            budget=max_tokens_per_run, tool_pool=tool_pool or "",
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
        kwargs: dict[str, Any] = {"message_history": history, "usage_limits": UsageLimits(request_limit=max_turns)}
        if output is not None:
            kwargs["output_type"] = output
        try:
            with agent.override(model=model, tools=[], toolsets=toolsets):
                result = await agent.run(prompt(c), **kwargs)
        except UsageLimitExceeded as exc:
            raise TurnLimitExceeded(f"Agent step {ctx.path!r} reached max_turns={max_turns}: {exc}") from exc
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

    made = step(body, id=id, retries=retries, backoff=backoff, timeout=timeout, pool=pool, resume=Decision,
                concurrency_key=concurrency_key, key_limit=key_limit, isolated=isolated)  # fmt: skip
    return replace(
        made,
        input=made.input if input is None else type(made.input)(input),
        output=type(made.output)(output),
        check_resume=check_resume,
        description=description if description is not None else f"pydantic-ai agent {getattr(agent, 'name', '')}",
    )
