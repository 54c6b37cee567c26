"""The agent's model and toolsets, wrapped so that each model request and each tool call is a sub-step row
(``engine.substeps``) made once: when the agent step runs again, what already succeeded is replayed from its row.

Requests are numbered in the order the agent makes them (``answer/model#1``, ``#2``…: one at a time); tool calls
by tool name in the order they appear in the model's responses (``answer/tool:lookup#1``), so a replayed response
gives its tool calls the same paths even though they run concurrently. A replayed request must send the same
messages as the recorded one (a digest of their content, without timestamps and ids): if the agent's code or
inputs changed between executions, the step fails with ``NonDeterministicAgent`` rather than mixing two runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from pydantic_ai import ModelMessagesTypeAdapter, ModelResponse, ToolCallPart
from pydantic_ai.exceptions import ModelRetry
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.toolsets.wrapper import WrapperToolset
from pydantic_core import to_jsonable_python

from .. import faults
from ..definition.context import StepContext
from ..engine import substeps
from ..exceptions import NonRetryableError, StepInterrupted
from ..store.models import StepRun
from . import streaming

KEEP = ("part_kind", "content", "tool_name", "args", "tool_call_id")


class NonDeterministicAgent(NonRetryableError):
    """The agent asked for something other than what this step recorded when it ran before."""


class TokenBudgetExceeded(NonRetryableError):
    """The run used more tokens than ``max_tokens_per_run`` allows."""


class TurnLimitExceeded(NonRetryableError):
    """The agent made ``max_turns`` model requests without finishing."""


class ApprovalPending(Exception):
    """A tool that needs approval was called: the step suspends (the agent's run is abandoned here)."""


async def db(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a database function from the agent's event loop (Django's ORM is synchronous)."""
    return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)


def dump_messages(messages: list[Any]) -> list[dict[str, Any]]:
    return ModelMessagesTypeAdapter.dump_python(list(messages), mode="json")


def load_messages(data: list[dict[str, Any]]) -> list[Any]:
    return ModelMessagesTypeAdapter.validate_python(data)


def digest(messages: list[Any]) -> str:
    """A hash of what the messages say (kinds, instructions, parts' content, tools, arguments, call ids)."""
    shape = []
    for m in dump_messages(messages):
        parts = []
        for p in m.get("parts") or []:
            part = {k: p.get(k) for k in KEEP if p.get(k) is not None}
            if isinstance(part.get("args"), str):
                try:
                    part["args"] = json.loads(part["args"])
                except ValueError:
                    pass
            parts.append(part)
        shape.append({"kind": m.get("kind"), "instructions": m.get("instructions"), "parts": parts})
    text = json.dumps(shape, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Recorder:
    """One execution of an agent step: what it recorded before, its counters, its approval state."""

    ctx: StepContext
    approval: frozenset[str]
    recorded: dict[str, StepRun]
    thread: str = ""
    budget: int | None = None
    tool_pool: str = ""  # tool calls hold a slot of this pool while they run
    history_upto: int | None = None
    decision: dict[str, Any] | None = None  # the resume decision, for the tool call it was asked about
    requests: int = 0
    tool_counts: Counter = field(default_factory=Counter)
    tool_paths: dict[str, tuple[str, int]] = field(default_factory=dict)  # call id -> (path, order)
    asked: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # approvals to ask: (order, payload)

    @property
    def parent(self) -> str:
        return self.ctx.path

    def number_tools(self, response: ModelResponse, tool_names: set[str]) -> None:
        for part in response.parts:
            if isinstance(part, ToolCallPart) and part.tool_name in tool_names:
                if part.tool_call_id in self.tool_paths:
                    continue
                self.tool_counts[part.tool_name] += 1
                path = f"{self.parent}/tool:{part.tool_name}#{self.tool_counts[part.tool_name]}"
                self.tool_paths[part.tool_call_id] = (path, len(self.tool_paths))

    def tool_path(self, name: str, call_id: str) -> tuple[str, int]:
        if call_id not in self.tool_paths:  # a tool the model request did not list (should not happen)
            self.tool_counts[name] += 1
            self.tool_paths[call_id] = (f"{self.parent}/tool:{name}#{self.tool_counts[name]}", len(self.tool_paths))
        return self.tool_paths[call_id]

    async def begin(self, path: str, kind: str, input: Any) -> StepRun:
        pool = self.tool_pool if kind == "tool" else ""
        wait = 0.02
        while (row := await db(substeps.begin, self.ctx.step_run_id, path, kind, input, pool)) == substeps.BUSY:
            await asyncio.sleep(wait)  # the tool pool is full: its slots free up as other tool calls end
            wait = min(wait * 2, 0.5)
        if row is None:  # the agent step is no longer running (canceled, or its lease was lost)
            raise StepInterrupted("canceled")
        return row

    async def end(self, row: StepRun, output: Any = None, **kwargs: Any) -> None:
        await asyncio.shield(db(substeps.end, row, output, **kwargs))  # recorded even if the task is cancelled
        if not kwargs.get("error") and not kwargs.get("canceled"):
            faults.point(f"recorded {row.path}")  # e.g. WORKFLOWS_CRASH_AT="recorded answer/model#2"

    async def failed(self, row: StepRun, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError | StepInterrupted):
            await self.end(row, canceled=True)
        else:
            await self.end(row, error=exc)


class DurableModel(WrapperModel):
    """Each request: replayed from its row if it succeeded before, else made and recorded."""

    def __init__(self, wrapped: Any, recorder: Recorder) -> None:
        super().__init__(wrapped)
        self.rec = recorder

    async def _replayed_or_budget(self, messages: list[Any], params: Any) -> tuple[str, str, ModelResponse | None]:
        rec = self.rec
        rec.requests += 1
        path, sent = f"{rec.parent}/model#{rec.requests}", digest(messages)
        row = rec.recorded.get(path)
        if row is not None:
            if (row.input or {}).get("digest") != sent:
                raise NonDeterministicAgent(
                    f"{path} was recorded for other messages than the agent sends now: its code, tools or inputs "
                    "changed between two executions of this step; restart the run"
                )
            response = load_messages([row.output])[0]
            rec.number_tools(response, {t.name for t in params.function_tools})
            return path, sent, response
        if rec.budget is not None:
            used = await db(substeps.tokens_used, rec.ctx.run_id)
            if used >= rec.budget:
                raise TokenBudgetExceeded(f"The run used {used} tokens; max_tokens_per_run is {rec.budget}")
        return path, sent, None

    async def _record(self, row: StepRun, messages: list[Any], response: ModelResponse, started: float, params) -> None:
        rec = self.rec
        usage = response.usage
        request, answer = dump_messages([messages[-1], response])
        name = response.model_name or self.model_name
        await rec.end(
            row, answer, thread=rec.thread,
            messages=[
                {"kind": "request", "message": request, "model_name": name},
                {"kind": "response", "message": answer, "model_name": name, "duration": time.monotonic() - started,
                 "input_tokens": usage.input_tokens or 0, "output_tokens": usage.output_tokens or 0},
            ],
        )  # fmt: skip
        rec.number_tools(response, {t.name for t in params.function_tools})
        if rec.budget is not None:
            used = await db(substeps.tokens_used, rec.ctx.run_id)
            if used > rec.budget:
                raise TokenBudgetExceeded(f"The run used {used} tokens; max_tokens_per_run is {rec.budget}")

    def _input(self, messages: list[Any], sent: str) -> dict[str, Any]:
        data = {"digest": sent, "model": self.model_name, "request": dump_messages([messages[-1]])[0]}
        if self.rec.requests == 1:
            data["history_upto"] = self.rec.history_upto
        return data

    async def request(self, messages, model_settings, model_request_parameters) -> ModelResponse:
        path, sent, replayed = await self._replayed_or_budget(messages, model_request_parameters)
        if replayed is not None:
            return replayed
        row = await self.rec.begin(path, "model", self._input(messages, sent))
        started = time.monotonic()
        try:
            if streaming.listening() and streaming.can_stream(self.wrapped):  # its text reaches the run page live
                response = await streaming.request_streamed(
                    self.wrapped, messages, model_settings, model_request_parameters, self.rec.ctx.run_id, path
                )
            else:
                response = await super().request(messages, model_settings, model_request_parameters)
        except BaseException as exc:
            await self.rec.failed(row, exc)
            raise
        await self._record(row, messages, response, started, model_request_parameters)
        return response

    @asynccontextmanager
    async def request_stream(
        self, messages, model_settings, model_request_parameters, run_context=None
    ) -> AsyncIterator[Any]:
        from pydantic_ai.models import CompletedStreamedResponse

        path, sent, replayed = await self._replayed_or_budget(messages, model_request_parameters)
        if replayed is not None:
            yield CompletedStreamedResponse(replayed, model_request_parameters=model_request_parameters)
            return
        row = await self.rec.begin(path, "model", self._input(messages, sent))
        started = time.monotonic()
        try:
            async with super().request_stream(
                messages, model_settings, model_request_parameters, run_context
            ) as stream:  # the whole response (its text published live as it comes), then it is recorded
                response = await streaming.consume(stream, self.rec.ctx.run_id, path)
        except BaseException as exc:
            await self.rec.failed(row, exc)
            raise
        await self._record(row, messages, response, started, model_request_parameters)
        yield CompletedStreamedResponse(response, model_request_parameters=model_request_parameters)


class DurableToolset(WrapperToolset):
    """Each tool call: replayed from its row if it succeeded before; a tool in ``approval`` waits for a human."""

    def __init__(self, wrapped: Any, recorder: Recorder) -> None:
        super().__init__(wrapped)
        self.rec = recorder

    async def call_tool(self, name: str, tool_args: dict[str, Any], ctx: Any, tool: Any) -> Any:
        rec = self.rec
        call_id = ctx.tool_call_id
        path, order = rec.tool_path(name, call_id)
        row = rec.recorded.get(path)
        if row is not None:
            recorded = row.input or {}
            if recorded.get("tool_call_id") != call_id:
                raise NonDeterministicAgent(f"{path} was recorded for another tool call than the agent makes now")
            out = row.output or {}
            if "model_retry" in out:
                raise ModelRetry(out["model_retry"])
            return out.get("result")
        note: dict[str, Any] = {}
        args = tool_args
        if name in rec.approval:
            decision = rec.decision if rec.decision and rec.decision.get("tool_call_id") == call_id else None
            if decision is None:
                rec.asked.append(
                    (order, {"tool": name, "args": to_jsonable_python(tool_args), "tool_call_id": call_id})
                )
                raise ApprovalPending(name)
            if not decision["approved"]:
                reason = decision.get("reason")
                text = f"The call of {name} was denied by a person" + (f": {reason}" if reason else ".")
                row = await rec.begin(path, "tool", {"tool_call_id": call_id, "tool": name, "args": tool_args,
                                                     "approved": False, "reason": reason})  # fmt: skip
                await rec.end(row, {"result": text, "denied": True})
                return text
            if decision.get("args") is not None:
                args = tool.args_validator.validate_python(decision["args"])
            note = {"approved": True, "edited_args": decision.get("args") is not None}
        row = await rec.begin(
            path, "tool", {"tool_call_id": call_id, "tool": name, "args": to_jsonable_python(args), **note}
        )
        try:
            result = await super().call_tool(name, args, ctx, tool)
        except ModelRetry as exc:
            await rec.end(row, {"model_retry": exc.message})
            raise
        except BaseException as exc:
            await rec.failed(row, exc)
            raise
        await rec.end(row, {"result": to_jsonable_python(result)})
        return result
