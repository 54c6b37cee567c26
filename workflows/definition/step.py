"""``@step``: a typed unit of work, run in its own RQ job."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import WorkflowDefinitionError
from .backoff import Backoff
from .schema import TypeSpec

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


@dataclass(frozen=True, eq=False)
class Step:
    """A typed unit of work; runs in its own RQ job. Made by the ``@step`` decorator."""

    id: str
    fn: Callable[..., Any]
    input: TypeSpec
    output: TypeSpec
    retries: int | None = None  # None: the workflow's default
    backoff: Backoff | None = None
    timeout: float | None = None
    pool: str | None = None
    resume: TypeSpec | None = None
    description: str = ""
    is_async: bool = False  # an ``async def`` body: the worker runs it on an event loop of its own
    concurrency_key: Callable[..., Any] | None = None  # fn(c) -> the key whose slots this step takes
    key_limit: int | None = None  # at most this many of its key's steps hold slots of its pool at once
    # (suspend_payload, resume data) -> None, raising InvalidInput: checks resume data beyond ``resume``'s type
    check_resume: Callable[[Any, Any], None] | None = None
    # True: runs in an RQ job of its own: never run eagerly by its predecessor's job, nor runs its successor in its
    # own (eager execution, ``runtime.jobs``). An execution choice, not part of the workflow's version.
    isolated: bool = False

    def __repr__(self) -> str:
        return f"<Step {self.id}>"


def _types_of(fn: Callable[..., Any]) -> tuple[Any, Any]:
    params = list(inspect.signature(fn).parameters.values())
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # an unresolvable forward reference
        raise WorkflowDefinitionError(f"Cannot read the type hints of {fn.__qualname__}: {exc}") from exc
    data_type = hints.get(params[1].name, Any) if len(params) > 1 else Any
    return data_type, hints.get("return", Any)


def step(
    fn: Callable[..., Any] | None = None,
    *,
    id: str | None = None,
    retries: int | None = None,
    backoff: Backoff | float | None = None,
    timeout: float | None = None,
    pool: str | None = None,
    resume: Any = None,
    description: str | None = None,
    concurrency_key: Callable[..., Any] | None = None,
    key_limit: int | None = None,
    isolated: bool = False,
) -> Any:
    """Declare a step: ``def f(ctx: StepContext, data: In) -> Out`` (or ``async def``); input/output types come
    from the hints. ``isolated=True``: the step always runs in an RQ job of its own (no eager execution into or
    out of it)."""

    def make(func: Callable[..., Any]) -> Step:
        if not callable(func):
            raise WorkflowDefinitionError(f"@step needs a function, got {func!r}")
        step_id = id or func.__name__
        if not ID_RE.match(step_id):
            raise WorkflowDefinitionError(f"Invalid step id {step_id!r}: use letters, digits, _ and -")
        if retries is not None and retries < 0:
            raise WorkflowDefinitionError(f"Step {step_id!r}: retries must be >= 0")
        if timeout is not None and timeout <= 0:
            raise WorkflowDefinitionError(f"Step {step_id!r}: timeout must be > 0 seconds")
        if len(inspect.signature(func).parameters) < 1:
            raise WorkflowDefinitionError(f"Step {step_id!r} must accept a context argument: f(ctx, data)")
        check_key(f"Step {step_id!r}", concurrency_key, key_limit)
        if not isinstance(isolated, bool):
            raise WorkflowDefinitionError(f"Step {step_id!r}: isolated must be True or False, got {isolated!r}")
        data_type, return_type = _types_of(func)
        return Step(
            id=step_id,
            fn=func,
            input=TypeSpec(data_type),
            output=TypeSpec(return_type),
            retries=retries,
            backoff=Backoff.coerce(backoff),
            timeout=timeout,
            pool=pool,
            resume=TypeSpec(resume) if resume is not None else None,
            description=description if description is not None else inspect.getdoc(func) or "",
            is_async=inspect.iscoroutinefunction(func),
            concurrency_key=concurrency_key,
            key_limit=key_limit,
            isolated=isolated,
        )

    return make(fn) if fn is not None else make


def check_key(what: str, key: Any, limit: Any) -> None:
    """``concurrency_key`` is a function of the context; ``key_limit`` a positive int."""
    if key is not None and not callable(key):
        raise WorkflowDefinitionError(f"{what}: concurrency_key must be a function of the context, got {key!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise WorkflowDefinitionError(f"{what}: key_limit must be a positive integer, got {limit!r}")
