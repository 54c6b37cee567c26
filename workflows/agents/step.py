"""``agent_step``: a pydantic-ai agent as a durable step; each model request and tool call a sub-step row.

Defining an agent step imports no pydantic-ai: the agent may be named by its import path (``source``) and the code
that runs it (``execute``) is imported when the step first runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import conf
from ..definition.backoff import Backoff
from ..definition.context import Context, StepContext
from ..definition.step import Step, step
from ..exceptions import InvalidInput, WorkflowDefinitionError
from .source import AgentPathError, AgentSource


class Decision(BaseModel):
    """How ``run.resume(data=...)`` answers a tool call waiting for approval."""

    approved: bool
    reason: str | None = None
    args: dict[str, Any] | None = None  # approved with these arguments instead (checked against the tool's schema)


def agent_step(
    agent: Any | str,
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

    ``agent`` is a pydantic-ai ``Agent``, or its import path ``"package.module:attribute"``: imported when the step
    first runs (or ``manage.py check``, or the approval form), so that processes that run no agent step do not load
    pydantic-ai. A path whose module does not exist raises ``AgentPathError`` here; one that does not resolve to an
    ``Agent`` fails the step at its first execution with it (not retried) and is reported by ``manage.py check``.

    Each model request and each tool call is recorded as its own step row (``<id>/model#1``,
    ``<id>/tool:lookup#1``) and never made twice: when the step runs again (a lost worker, a retry after a
    provider error, a resume after an approval) the agent replays what succeeded. ``approval`` names tools that
    suspend the run before they run; ``thread(c)`` names a conversation continued across runs; ``max_turns``
    bounds the model requests of one execution, ``max_tokens_per_run`` the tokens of the whole run.
    ``isolated=True``: the agent step runs in an RQ job of its own (as ``@step(isolated=True)``).
    """
    approval = frozenset(approval)
    source = AgentSource(agent, id, approval)  # an Agent's approval names are checked here, a path's when resolved
    if tool_pool is not None:
        conf.pool(tool_pool)  # WorkflowDefinitionError for a pool the settings do not have
    if tool_pool is not None and tool_pool == pool:
        raise WorkflowDefinitionError(f"agent_step {id!r}: tool_pool must differ from pool (the step holds a slot)")
    if max_turns is not None and max_turns < 1:
        raise WorkflowDefinitionError(f"agent_step {id!r}: max_turns must be >= 1")

    options = (prompt, output, input is None, thread, max_turns, approval, max_tokens_per_run, tool_pool)

    async def body(ctx: StepContext, data: Any) -> Any:
        from .execute import Options, run_agent  # pydantic-ai loads with the first agent step a process runs

        return await run_agent(source.get(), Options(*options), ctx, data)

    body.agent_source = source  # what ``manage.py check`` resolves (``agents.checks``)
    made = step(body, id=id, retries=retries, backoff=backoff, timeout=timeout, pool=pool, resume=Decision,
                concurrency_key=concurrency_key, key_limit=key_limit, isolated=isolated)  # fmt: skip
    return replace(
        made,
        input=made.input if input is None else type(made.input)(input),
        output=type(made.output)(output),
        check_resume=_ResumeCheck(source),
        description=description if description is not None else f"pydantic-ai agent {source.name}",
    )


class _ResumeCheck:
    """A step's ``check_resume``: edited arguments must fit the tool's schema (InvalidInput otherwise: the run stays
    suspended). ``tool_schemas``: each approval tool's argument schema, from which the run page's approval form is
    generated ({} while the agent's path does not resolve: the arguments are then edited as JSON)."""

    def __init__(self, source: AgentSource) -> None:
        self.source = source

    def __call__(self, payload: Any, data: Any) -> None:
        if not isinstance(payload, dict) or not isinstance(data, dict) or data.get("args") is None:
            return
        tool = self.source.tools().get(payload.get("tool"))
        if tool is None:
            return
        try:
            tool.function_schema.validator.validate_python(data["args"])
        except ValidationError as exc:
            errors = [{"loc": ("args", *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
            raise InvalidInput(f"arguments for tool {payload['tool']!r}: {exc}", errors=errors) from None

    @property
    def tool_schemas(self) -> dict[str, Any]:
        try:
            tools = self.source.tools()
        except AgentPathError:
            return {}
        return {name: tools[name].function_schema.json_schema for name in self.source.approval}
