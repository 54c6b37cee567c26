"""The workflow DSL: the ``Workflow`` builder (Mastra's model: a chain of blocks) over ``@step``s."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import WorkflowDefinitionError
from . import ports, registry
from .graph import compile_graph
from .schedule import Schedule, check_schedules
from .schema import TypeSpec
from .step import ID_RE, Step, check_key

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}$")


@dataclass
class _Spec:
    """One block as written, before compilation."""

    kind: str
    steps: list[Any] = field(default_factory=list)  # Steps, or committed Workflows (nested)
    conditions: list[Callable[..., Any]] = field(default_factory=list)
    fn: Callable[..., Any] | None = None
    id: str = ""
    output: TypeSpec | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Workflow:
    """A named chain of blocks. Build it with ``then``/``parallel``/``branch``/loops/…, then ``commit()``."""

    def __init__(
        self,
        name: str,
        *,
        input: Any = None,
        output: Any = None,
        description: str = "",
        retries: int | None = None,
        pool: str | None = None,
        state: Any = None,
        version: str | None = None,
        schedules: Sequence[Schedule] | None = None,
        on_success: Step | Workflow | None = None,
        on_failure: Step | Workflow | None = None,
        on_finish: Step | Workflow | None = None,
        priority: int = 0,
        concurrency_key: Callable[..., Any] | None = None,
        key_limit: int | None = None,
        eager: bool = True,
    ) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise WorkflowDefinitionError(f"Invalid workflow name {name!r}: letters, digits, '_', '.', '-'")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)
        if version is not None and not (isinstance(version, str) and VERSION_RE.match(version)):
            raise WorkflowDefinitionError(
                f"Workflow {name!r}: invalid version {version!r}: up to 32 letters, digits, '_', '.', '+', '-'"
            )
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise WorkflowDefinitionError(f"Workflow {name!r}: priority must be an integer, got {priority!r}")
        check_key(f"Workflow {name!r}", concurrency_key, key_limit)
        if not isinstance(eager, bool):
            raise WorkflowDefinitionError(f"Workflow {name!r}: eager must be True or False, got {eager!r}")
        # False: each of its steps runs in an RQ job of its own (no eager execution, ``runtime.jobs``); like priority,
        # an execution choice, not part of the version (``graph.compile_graph``)
        self.eager = eager
        self.priority = priority  # its runs' default priority (flow.start(priority=) overrides it)
        self.concurrency_key = concurrency_key  # the default of its steps that name none
        self.key_limit = key_limit
        self.name = name
        self.input = TypeSpec(input)
        self.output = TypeSpec(output)
        self.state = TypeSpec(state) if state is not None else None
        self.description = description
        self.retries = retries
        self.pool = pool
        self._version = version  # None: the version is the graph's fingerprint
        # started by the recovery loop; not part of the version (store.scheduling keeps them in the database)
        self.schedules = check_schedules(name, schedules, self.input.validate)
        self._specs: list[_Spec] = []
        # completion hooks (``definition.hooks``): run as steps of the run once its body ended
        given = {"success": on_success, "failure": on_failure, "finish": on_finish}
        self._hooks = {on: _as_node(item, f"on_{on}") for on, item in given.items() if item is not None}
        self._graph = None
        self._module = sys._getframe(1).f_globals.get("__name__", "?")  # tells duplicate names apart
        if self.state is not None:
            try:
                self.state.dump(self.state.adapter.validate_python({}))
            except Exception as exc:
                raise WorkflowDefinitionError(f"Workflow {name!r}: state type needs defaults for every field") from exc

    def __repr__(self) -> str:
        return f"<Workflow {self.name}{f' version {self.version}' if self.committed else ' (uncommitted)'}>"

    # building -------------------------------------------------------------------------------------------

    def _add(self, spec: _Spec) -> Workflow:
        if self.committed:
            raise WorkflowDefinitionError(f"Workflow {self.name!r} is committed and can no longer change")
        ids = [_node_id(s) for s in spec.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise WorkflowDefinitionError(f"Duplicate step ids in one {spec.kind} block: {', '.join(dupes)}")
        self._specs.append(spec)
        return self

    def then(self, item: Step | Workflow) -> Workflow:
        """Run one step (or a committed workflow, as a child run) on the previous block's output."""
        return self._add(_Spec("step", steps=[_as_node(item, "then")]))

    def parallel(self, items: Sequence[Step | Workflow]) -> Workflow:
        """Run the steps side by side on the same input; output ``{step_id: output}``."""
        steps = [_as_node(i, "parallel") for i in _as_list(items, "parallel")]
        return self._add(_Spec("parallel", steps=steps))

    def branch(self, pairs: Sequence[tuple[Callable[..., bool], Step | Workflow]]) -> Workflow:
        """Run every step whose condition holds; output ``{step_id: output}`` of those that ran."""
        conditions, steps = [], []
        for pair in _as_list(pairs, "branch"):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise WorkflowDefinitionError("branch() takes a list of (condition, step) pairs")
            cond, item = pair
            conditions.append(_callable(cond, "branch() condition"))
            steps.append(_as_node(item, "branch"))
        return self._add(_Spec("branch", steps=steps, conditions=conditions))

    def dowhile(self, item: Step | Workflow, condition: Callable[..., bool], *, max_iterations: int = 1000) -> Workflow:
        """Run the body, then again while ``condition(c)`` holds (``c.data``: the last output, ``c.iteration``)."""
        return self._loop("while", item, condition, max_iterations)

    def dountil(self, item: Step | Workflow, condition: Callable[..., bool], *, max_iterations: int = 1000) -> Workflow:
        """Run the body, then again until ``condition(c)`` holds. Output: the last iteration's output."""
        return self._loop("until", item, condition, max_iterations)

    def _loop(self, mode: str, item: Any, condition: Any, max_iterations: int) -> Workflow:
        if not isinstance(max_iterations, int) or max_iterations < 1:
            raise WorkflowDefinitionError("max_iterations must be a positive integer")
        node = _as_node(item, f"do{mode}")
        spec = _Spec("loop", steps=[node], conditions=[_callable(condition, f"do{mode}() condition")])
        spec.options = {"mode": mode, "max_iterations": max_iterations}
        return self._add(spec)

    def foreach(self, item: Step | Workflow, *, concurrency: int = 1) -> Workflow:
        """Run the step once per element of the input list, at most ``concurrency`` at once; list out, in order."""
        if not isinstance(concurrency, int) or concurrency < 1:
            raise WorkflowDefinitionError("foreach() concurrency must be a positive integer")
        return self._add(_Spec("foreach", steps=[_as_node(item, "foreach")], options={"concurrency": concurrency}))

    def map(self, fn: Callable[..., Any], *, id: str | None = None, output: Any = None) -> Workflow:
        """Reshape data between blocks: ``fn(c)`` gets ``c.data`` and returns the next block's input.

        ``output`` (else ``fn``'s return annotation) types what the next block's conditions see as ``c.data``.
        """
        _callable(fn, "map()")
        if output is None:
            output = typing.get_type_hints(fn).get("return", Any) if inspect.isfunction(fn) else Any
        return self._add(_Spec("map", fn=fn, id=self._block_id(id, "map"), output=TypeSpec(output)))

    def sleep(self, seconds: float | Callable[..., Any], *, id: str | None = None) -> Workflow:
        """A durable timer: wait ``seconds`` (or ``fn(c)`` seconds) without holding a worker; data passes through."""
        if not callable(seconds) and not (isinstance(seconds, int | float) and seconds >= 0):
            raise WorkflowDefinitionError("sleep() takes seconds >= 0 or a function of the context")
        return self._add(_Spec("sleep", fn=_as_fn(seconds), id=self._block_id(id, "sleep"), options={"mode": "for"}))

    def sleep_until(self, when: Any, *, id: str | None = None) -> Workflow:
        """A durable timer until a datetime (or ``fn(c)`` returning one); data passes through."""
        import datetime as dt

        if not callable(when) and not isinstance(when, dt.datetime):
            raise WorkflowDefinitionError("sleep_until() takes a datetime or a function of the context")
        return self._add(_Spec("sleep", fn=_as_fn(when), id=self._block_id(id, "sleep"), options={"mode": "until"}))

    def wait_for_event(
        self, name: str, *, schema: Any = None, timeout: float | None = None, id: str | None = None
    ) -> Workflow:
        """Wait for ``run.send_event(name, data)``; output the event's payload (validated by ``schema``)."""
        if not isinstance(name, str) or not ID_RE.match(name):
            raise WorkflowDefinitionError(f"Invalid event name {name!r}")
        if timeout is not None and timeout <= 0:
            raise WorkflowDefinitionError("wait_for_event() timeout must be > 0 seconds")
        spec = _Spec("event", id=self._block_id(id or name, "event"), output=TypeSpec(schema))
        spec.options = {"event": name, "timeout": timeout}
        return self._add(spec)

    def _block_id(self, given: str | None, prefix: str) -> str:
        block_id = given or f"{prefix}{len(self._specs) + 1}"
        if not ID_RE.match(block_id):
            raise WorkflowDefinitionError(f"Invalid id {block_id!r}: use letters, digits, _ and -")
        return block_id

    def commit(self) -> Workflow:
        """Validate, freeze and register the workflow (beside its other committed versions: the newest is the last
        committed; ``registry.get(name)`` returns it)."""
        if self.committed:
            return self
        if not self._specs:
            raise WorkflowDefinitionError(f"Workflow {self.name!r} has no steps")
        hooks = [_Spec("hook", steps=[node], options={"on": on}) for on, node in self._hooks.items()]
        graph = compile_graph(self, self._specs + hooks)
        ports.engine().check_commit(graph)  # e.g. an unknown pool: an error now, not a stuck step later
        self._graph = graph
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
        """The author's ``version=``, else a hash of what the author wrote (see ``graph.compile_graph``)."""
        return self.graph.version

    def start(
        self,
        data: Any = None,
        *,
        user: Any = None,
        idempotency_key: str | None = None,
        priority: int | None = None,
        debounce: tuple[str, float] | tuple[str, float, float] | None = None,
    ):
        """Validate the input and create a Run (InvalidInput creates nothing). Returns the committed Run.

        ``priority`` (default: the workflow's): its steps are admitted before those of lower priority.
        ``debounce=(key, seconds[, max_wait])``: starts with that key collapse into one run, which starts with the
        last input once ``seconds`` pass without another start (or ``max_wait`` after the first one)."""
        options: dict[str, Any] = {}
        if priority is not None:
            options["priority"] = priority
        if debounce is not None:
            options["debounce"] = debounce
        return ports.engine().start(self, data, user=user, idempotency_key=idempotency_key, **options)


def _node_id(item: Step | Workflow) -> str:
    return item.id if isinstance(item, Step) else item.name


def _callable(fn: Any, what: str) -> Callable[..., Any]:
    if not callable(fn):
        raise WorkflowDefinitionError(f"{what} needs a function, got {fn!r}")
    return fn


def _as_fn(value: Any) -> Callable[..., Any]:
    if callable(value):
        return value

    def constant(c: Any) -> Any:
        return value

    constant.__qualname__ = repr(value)  # what the drawing shows; the version covers the value (a closure cell)
    return constant


def _as_list(items: Any, what: str) -> list:
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        raise WorkflowDefinitionError(f"{what}() takes a non-empty list")
    return list(items)


def _as_node(item: Any, what: str) -> Step | Workflow:
    if isinstance(item, Step):
        return item
    if isinstance(item, Workflow):
        if not item.committed:
            raise WorkflowDefinitionError(f"{what}(): workflow {item.name!r} must be committed before nesting")
        if not ID_RE.match(item.name):
            raise WorkflowDefinitionError(f"{what}(): a nested workflow's name must be a valid step id: {item.name!r}")
        return item
    if callable(item):
        name = getattr(item, "__name__", repr(item))
        raise WorkflowDefinitionError(f"{what}() got plain function {name!r}: decorate it with @step")
    raise WorkflowDefinitionError(f"{what}() expects a @step or a committed Workflow, got {item!r}")
