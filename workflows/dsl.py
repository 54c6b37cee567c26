"""The workflow DSL: ``@step`` and the ``Workflow`` builder (Mastra's model: a chain of blocks)."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backoff import Backoff
from .exceptions import WorkflowDefinitionError
from .schema import TypeSpec

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
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
) -> Any:
    """Declare a step: ``def f(ctx: StepContext, data: In) -> Out``; input/output types come from the hints."""

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
        )

    return make(fn) if fn is not None else make


@dataclass
class _Spec:
    """One block as written, before compilation."""

    kind: str
    steps: list[Step] = field(default_factory=list)
    conditions: list[Callable[..., Any]] = field(default_factory=list)
    fn: Callable[..., Any] | None = None
    id: str = ""
    output: TypeSpec | None = None


class Workflow:
    """A named chain of blocks. Build it with ``then``/``parallel``/``branch``/``map``, then ``commit()``."""

    def __init__(
        self,
        name: str,
        *,
        input: Any = None,
        output: Any = None,
        description: str = "",
        retries: int | None = None,
        pool: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise WorkflowDefinitionError(f"Invalid workflow name {name!r}: letters, digits, '_', '.', '-'")
        self.name = name
        self.input = TypeSpec(input)
        self.output = TypeSpec(output)
        self.description = description
        self.retries = retries
        self.pool = pool
        self._specs: list[_Spec] = []
        self._graph = None
        self._module = sys._getframe(1).f_globals.get("__name__", "?")  # tells duplicate names apart

    def __repr__(self) -> str:
        return f"<Workflow {self.name}{'' if self.committed else ' (uncommitted)'}>"

    # building -------------------------------------------------------------------------------------------

    def _add(self, spec: _Spec) -> Workflow:
        if self.committed:
            raise WorkflowDefinitionError(f"Workflow {self.name!r} is committed and can no longer change")
        ids = [s.id for s in spec.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise WorkflowDefinitionError(f"Duplicate step ids in one {spec.kind} block: {', '.join(dupes)}")
        self._specs.append(spec)
        return self

    def then(self, item: Step) -> Workflow:
        """Run one step on the previous block's output."""
        return self._add(_Spec("step", steps=[_as_step(item, "then")]))

    def parallel(self, items: Sequence[Step]) -> Workflow:
        """Run the steps side by side on the same input; output ``{step_id: output}``."""
        steps = [_as_step(i, "parallel") for i in _as_list(items, "parallel")]
        return self._add(_Spec("parallel", steps=steps))

    def branch(self, pairs: Sequence[tuple[Callable[..., bool], Step]]) -> Workflow:
        """Run every step whose condition holds; output ``{step_id: output}`` of those that ran."""
        conditions, steps = [], []
        for pair in _as_list(pairs, "branch"):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise WorkflowDefinitionError("branch() takes a list of (condition, step) pairs")
            cond, item = pair
            if not callable(cond):
                raise WorkflowDefinitionError(f"branch() condition {cond!r} is not callable")
            conditions.append(cond)
            steps.append(_as_step(item, "branch"))
        return self._add(_Spec("branch", steps=steps, conditions=conditions))

    def map(self, fn: Callable[..., Any], *, id: str | None = None, output: Any = None) -> Workflow:
        """Reshape data between blocks: ``fn(c)`` gets ``c.data`` and returns the next block's input.

        ``output`` (else ``fn``'s return annotation) types what the next block's conditions see as ``c.data``.
        """
        if not callable(fn):
            raise WorkflowDefinitionError(f"map() needs a function, got {fn!r}")
        if output is None:
            output = typing.get_type_hints(fn).get("return", Any) if inspect.isfunction(fn) else Any
        map_id = id or f"map{len(self._specs) + 1}"
        if not ID_RE.match(map_id):
            raise WorkflowDefinitionError(f"Invalid map id {map_id!r}")
        return self._add(_Spec("map", fn=fn, id=map_id, output=TypeSpec(output)))

    def commit(self) -> Workflow:
        """Validate, freeze and register the workflow."""
        from . import registry
        from .graph import compile_graph

        if self.committed:
            return self
        if not self._specs:
            raise WorkflowDefinitionError(f"Workflow {self.name!r} has no steps")
        self._graph = compile_graph(self, self._specs)
        registry.register(self)
        return self

    # using ----------------------------------------------------------------------------------------------

    @property
    def committed(self) -> bool:
        return self._graph is not None

    @property
    def graph(self):
        if self._graph is None:
            raise WorkflowDefinitionError(f"Workflow {self.name!r} is not committed: call .commit() first")
        return self._graph

    @property
    def version(self) -> str:
        return self.graph.version

    def start(self, data: Any = None, *, user: Any = None, idempotency_key: str | None = None):
        """Validate the input and create a Run (InvalidInput creates nothing). Returns the committed Run."""
        from . import engine

        return engine.start(self, data, user=user, idempotency_key=idempotency_key)


def _as_list(items: Any, what: str) -> list:
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        raise WorkflowDefinitionError(f"{what}() takes a non-empty list")
    return list(items)


def _as_step(item: Any, what: str) -> Step:
    if isinstance(item, Step):
        return item
    if isinstance(item, Workflow):
        raise WorkflowDefinitionError(f"{what}(): nesting workflow {item.name!r} is not supported here yet")
    if callable(item):
        name = getattr(item, "__name__", repr(item))
        raise WorkflowDefinitionError(f"{what}() got plain function {name!r}: decorate it with @step")
    raise WorkflowDefinitionError(f"{what}() expects a @step, got {item!r}")
