"""A committed workflow compiled to an immutable chain of blocks, serialisable to JSON for storage and drawing."""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import conf
from .backoff import Backoff
from .dsl import Step
from .exceptions import WorkflowDefinitionError
from .schema import TypeSpec

BLOCK_KINDS = ("step", "parallel", "branch", "map")


@dataclass(frozen=True)
class Node:
    """A step placed in a block, with its effective settings (step's own, else the workflow's, else global)."""

    step: Step
    retries: int
    backoff: Backoff
    timeout: float | None
    pool: str

    @property
    def id(self) -> str:
        return self.step.id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "description": self.step.description,
            "retries": self.retries,
            "backoff": self.backoff.to_json(),
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
    output: TypeSpec | None = None  # a map's declared output type

    def node(self, step_id: str) -> Node:
        for n in self.nodes:
            if n.id == step_id:
                return n
        raise KeyError(step_id)

    def typed(self, output: Any) -> Any:
        """This block's JSON output as the typed value the next block's conditions and maps see."""
        if self.kind == "step":
            return self.nodes[0].step.output.validate(output, "output")
        if self.kind in ("parallel", "branch"):
            return {k: self.node(k).step.output.validate(v, "output") for k, v in (output or {}).items()}
        return self.output.validate(output, "output") if self.output else output

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "kind": self.kind}
        if self.nodes:
            data["steps"] = [n.to_json() for n in self.nodes]
        if self.kind == "branch":
            data["conditions"] = [_source(c) for c in self.conditions]
        if self.kind == "map":
            data["id"] = self.id
            data["source"] = _source(self.fn)
            data["output_schema"] = self.output.json_schema() if self.output else {}
        return data


@dataclass(frozen=True)
class Graph:
    name: str
    description: str
    input: TypeSpec
    output: TypeSpec
    blocks: tuple[Block, ...]
    version: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "input_schema": self.input.json_schema(),
            "output_schema": self.output.json_schema(),
            "blocks": [b.to_json() for b in self.blocks],
        }

    def typed_input(self, data: Any) -> Any:
        return self.input.validate(data, "workflow input")

    def pools(self) -> set[str]:
        return {n.pool for b in self.blocks for n in b.nodes}


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


def _node(step: Step, workflow: Any) -> Node:
    pool = step.pool or workflow.pool or conf.get("DEFAULT_POOL")
    conf.pool(pool)  # unknown pool: a definition error now, not a stuck step later
    retries = step.retries if step.retries is not None else workflow.retries
    return Node(
        step=step,
        retries=conf.get("DEFAULT_RETRIES") if retries is None else retries,
        backoff=step.backoff or Backoff.coerce(conf.get("DEFAULT_BACKOFF")),
        timeout=step.timeout if step.timeout is not None else conf.get("DEFAULT_TIMEOUT"),
        pool=pool,
    )


def compile_graph(workflow: Any, specs: list) -> Graph:
    blocks = []
    for index, spec in enumerate(specs):
        if spec.kind not in BLOCK_KINDS:
            raise WorkflowDefinitionError(f"Unknown block kind {spec.kind!r}")
        nodes = tuple(_node(s, workflow) for s in spec.steps)
        blocks.append(Block(index, spec.kind, nodes, tuple(spec.conditions), spec.fn, spec.id, spec.output))
    shape = {
        "name": workflow.name,
        "input_schema": workflow.input.json_schema(),
        "output_schema": workflow.output.json_schema(),
        "blocks": [b.to_json() for b in blocks],
    }
    version = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Graph(workflow.name, workflow.description, workflow.input, workflow.output, tuple(blocks), version)
