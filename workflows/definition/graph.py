"""A committed workflow compiled to an immutable chain of blocks, serialisable to JSON for storage and drawing."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import WorkflowDefinitionError
from .backoff import Backoff
from .schema import TypeSpec
from .step import Step

if TYPE_CHECKING:
    from .dsl import Workflow

# kinds whose nodes run as StepRuns (steps in workers, workflows as child runs)
NODE_KINDS = ("step", "parallel", "branch", "loop", "foreach")
# kinds that run inline in the engine's transaction: one StepRun row each, with the block's id as path
INLINE_KINDS = ("map", "sleep", "event")


@dataclass(frozen=True)
class Node:
    """A step or nested workflow placed in a block, with the options its author gave (None: not given).

    Settings defaults (``DEFAULT_RETRIES``, ``DEFAULT_POOL``...) are not resolved here but when a step runs
    (``engine.policy``): they are deployment settings, not part of the workflow, so they stay out of its version.
    """

    step: Step | None
    workflow: Workflow | None
    retries: int | None
    backoff: Backoff | None
    timeout: float | None
    pool: str | None

    @property
    def id(self) -> str:
        return self.step.id if self.step else self.workflow.name

    @property
    def kind(self) -> str:
        return "step" if self.step else "workflow"

    @property
    def output(self) -> TypeSpec:
        return self.step.output if self.step else self.workflow.output

    def to_json(self) -> dict[str, Any]:
        if self.workflow is not None:
            return {"id": self.id, "kind": "workflow", "workflow": self.workflow.name, "version": self.workflow.version}
        return {
            "id": self.id,
            "kind": "step",
            "description": self.step.description,
            "retries": self.retries,
            "backoff": self.backoff.to_json() if self.backoff else None,
            "timeout": self.timeout,
            "pool": self.pool,
            "input_schema": self.step.input.json_schema(),
            "output_schema": self.step.output.json_schema(),
            "resume_schema": self.step.resume.json_schema() if self.step.resume else None,
        }


@dataclass(frozen=True)
class Block:
    index: int
    kind: str
    nodes: tuple[Node, ...] = ()
    conditions: tuple[Callable[..., Any], ...] = ()
    fn: Callable[..., Any] | None = None
    id: str = ""
    output: TypeSpec | None = None  # a map's declared output type; an event's schema
    options: dict[str, Any] = field(default_factory=dict)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def typed(self, output: Any) -> Any:
        """This block's JSON output as the typed value the next block's conditions and maps see."""
        if self.kind in ("step", "loop"):
            return self.nodes[0].output.validate(output, "output")
        if self.kind == "foreach":
            return [self.nodes[0].output.validate(item, "output") for item in output or []]
        if self.kind in ("parallel", "branch"):
            return {k: self.node(k).output.validate(v, "output") for k, v in (output or {}).items()}
        return self.output.validate(output, "output") if self.output else output

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "kind": self.kind}
        if self.nodes:
            data["steps"] = [n.to_json() for n in self.nodes]
        if self.kind in ("branch", "loop"):
            data["conditions"] = [_source(c) for c in self.conditions]
        if self.kind in INLINE_KINDS:
            data["id"] = self.id
        if self.kind in ("map", "sleep"):
            data["source"] = _source(self.fn)
        if self.kind in ("map", "event"):
            data["output_schema"] = self.output.json_schema() if self.output else {}
        data.update(self.options)
        return data


@dataclass(frozen=True)
class Graph:
    name: str
    description: str
    input: TypeSpec
    output: TypeSpec
    state: TypeSpec | None
    blocks: tuple[Block, ...]
    version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "input_schema": self.input.json_schema(),
            "output_schema": self.output.json_schema(),
            "state_schema": self.state.json_schema() if self.state else None,
            "blocks": [b.to_json() for b in self.blocks],
        }

    def typed_input(self, data: Any) -> Any:
        return self.input.validate(data, "workflow input")

    def initial_state(self) -> Any:
        return self.state.dump(self.state.adapter.validate_python({})) if self.state else None

    def event_blocks(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == "event" and b.options["event"] == name]

    def block_of(self, step_id: str) -> Block:
        """The first block that runs ``step_id`` (a step, nested workflow, map, sleep or event id)."""
        for b in self.blocks:
            if b.id == step_id or any(n.id == step_id for n in b.nodes):
                return b
        raise KeyError(step_id)


def _source(fn: Callable[..., Any] | None) -> str:
    """Readable text of a condition or map function, for the drawing (lambdas show their expression)."""
    if fn is None:
        return ""
    try:
        text = inspect.getsource(fn).strip()
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))
    if "lambda" in text:
        text = text[text.index("lambda") :]
        depth = 0
        for i, ch in enumerate(text):  # cut at the end of the lambda expression
            depth += ch in "([{"
            depth -= ch in ")]}"
            if depth < 0 or (depth == 0 and ch == ","):
                return text[:i].strip()
        return text.rstrip(",)").strip()
    return getattr(fn, "__qualname__", text.splitlines()[0])


def _node(item: Step | Workflow, workflow: Workflow) -> Node:
    if not isinstance(item, Step):  # a committed workflow, nested as a child run
        return Node(step=None, workflow=item, retries=0, backoff=None, timeout=None, pool=None)
    return Node(
        step=item,
        workflow=None,
        retries=item.retries if item.retries is not None else workflow.retries,
        backoff=item.backoff,
        timeout=item.timeout,
        pool=item.pool or workflow.pool,
    )


def compile_graph(workflow: Workflow, specs: list) -> Graph:
    blocks = []
    for index, spec in enumerate(specs):
        if spec.kind not in NODE_KINDS + INLINE_KINDS:
            raise WorkflowDefinitionError(f"Unknown block kind {spec.kind!r}")
        nodes = tuple(_node(s, workflow) for s in spec.steps)
        block_id = spec.id or nodes[0].id
        blocks.append(
            Block(index, spec.kind, nodes, tuple(spec.conditions), spec.fn, block_id, spec.output, dict(spec.options))
        )
    shape = {
        "name": workflow.name,
        "input_schema": workflow.input.json_schema(),
        "output_schema": workflow.output.json_schema(),
        "state_schema": workflow.state.json_schema() if workflow.state else None,
        "blocks": [b.to_json() for b in blocks],
    }
    version = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Graph(
        workflow.name, workflow.description, workflow.input, workflow.output, workflow.state, tuple(blocks), version
    )
