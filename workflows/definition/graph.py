"""A committed workflow compiled to an immutable chain of blocks, serialisable to JSON for storage and drawing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import WorkflowDefinitionError
from .backoff import Backoff
from .fingerprint import fingerprint, source_text
from .schema import TypeSpec
from .step import Step

if TYPE_CHECKING:
    from .dsl import Workflow

# kinds whose nodes run as StepRuns (steps in workers, workflows as child runs)
NODE_KINDS = ("step", "parallel", "branch", "loop", "foreach")
# kinds that run inline in the engine's transaction: one StepRun row each, with the block's id as path
INLINE_KINDS = ("map", "sleep", "event")
# completion hooks: blocks after the body, each one node, run once the run ended (``options["on"]``: which end)
HOOK_KIND = "hook"
HOOK_ENDS = {"success": ("succeeded",), "failure": ("failed",), "finish": ("succeeded", "failed", "canceled")}


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
    concurrency_key: Callable[..., Any] | None = None
    key_limit: int | None = None

    @property
    def id(self) -> str:
        return self.step.id if self.step else self.workflow.name

    @property
    def kind(self) -> str:
        return "step" if self.step else "workflow"

    @property
    def output(self) -> TypeSpec:
        return self.step.output if self.step else self.workflow.output

    def to_json(self, readable: bool = True) -> dict[str, Any]:
        """The node as stored and drawn; ``readable=False``: what its version covers (no descriptions)."""
        if self.workflow is not None:
            return {"id": self.id, "kind": "workflow", "workflow": self.workflow.name, "version": self.workflow.version}
        schema = _schema if readable else _shape_of
        data = {
            "id": self.id,
            "kind": "step",
            "retries": self.retries,
            "backoff": self.backoff.to_json() if self.backoff else None,
            "timeout": self.timeout,
            "pool": self.pool,
            "input_schema": schema(self.step.input),
            "output_schema": schema(self.step.output),
            "resume_schema": schema(self.step.resume),
        }
        if self.concurrency_key is not None or self.key_limit is not None:  # absent otherwise: versions unchanged
            data["concurrency_key"] = getattr(self.concurrency_key, "__qualname__", None)
            data["key_limit"] = self.key_limit
        if readable:
            data["description"] = self.step.description
        return data


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

    def to_json(self, readable: bool = True) -> dict[str, Any]:
        """The block as stored and drawn (conditions and functions as source text); ``readable=False``: what its
        version covers (conditions and functions as fingerprints of their compiled code, no descriptions)."""
        code = source_text if readable else fingerprint
        data: dict[str, Any] = {"index": self.index, "kind": self.kind}
        if self.nodes:
            data["steps"] = [n.to_json(readable) for n in self.nodes]
        if self.kind in ("branch", "loop"):
            data["conditions"] = [code(c) for c in self.conditions]
        if self.kind in INLINE_KINDS:
            data["id"] = self.id
        if self.kind in ("map", "sleep"):
            data["source"] = code(self.fn)
        if self.kind in ("map", "event"):
            data["output_schema"] = (_schema if readable else _shape_of)(self.output) or {}
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
    version: str  # the author's ``Workflow(..., version=)``, else the fingerprint
    fingerprint: str = ""  # a hash of what the author wrote (``compile_graph``)
    eager: bool = True  # ``Workflow(eager=)``: may a job run the next step itself; not in the fingerprint

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "fingerprint": self.fingerprint,
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

    @property
    def body_end(self) -> int:
        """The index after the body's last block: completion hooks come after it."""
        return next((b.index for b in self.blocks if b.kind == HOOK_KIND), len(self.blocks))

    def hooks_for(self, status: str) -> list[Block]:
        """The hook blocks a run ending as ``status`` runs."""
        return [b for b in self.blocks if b.kind == HOOK_KIND and status in HOOK_ENDS[b.options["on"]]]

    def event_blocks(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.kind == "event" and b.options["event"] == name]

    def block_of(self, step_id: str) -> Block:
        """The first block of the body that runs ``step_id`` (a step, nested workflow, map, sleep or event id)."""
        for b in self.blocks[: self.body_end]:
            if b.id == step_id or any(n.id == step_id for n in b.nodes):
                return b
        raise KeyError(step_id)


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
        concurrency_key=item.concurrency_key or workflow.concurrency_key,
        key_limit=item.key_limit if item.key_limit is not None else workflow.key_limit,
    )


def compile_graph(workflow: Workflow, specs: list) -> Graph:
    """The workflow's graph. Its fingerprint hashes what the author wrote: blocks, step ids, the options given,
    schemas, the compiled code of conditions and functions, nested workflows' versions; never settings defaults
    (``Node`` keeps None for what was not given), descriptions or line numbers, nor execution choices that do not
    change what a run computes (``eager=``, a step's ``isolated=``, like ``priority=``): a run in flight follows
    them from the step after the change, instead of needing its old version deployed. Its version is the author's
    ``version=`` if given, else that fingerprint."""
    blocks = []
    for index, spec in enumerate(specs):
        if spec.kind not in (*NODE_KINDS, *INLINE_KINDS, HOOK_KIND):
            raise WorkflowDefinitionError(f"Unknown block kind {spec.kind!r}")
        nodes = tuple(_node(s, workflow) for s in spec.steps)
        block_id = spec.id or nodes[0].id
        blocks.append(
            Block(index, spec.kind, nodes, tuple(spec.conditions), spec.fn, block_id, spec.output, dict(spec.options))
        )
    shape = {
        "name": workflow.name,
        "input_schema": _shape_of(workflow.input),
        "output_schema": _shape_of(workflow.output),
        "state_schema": _shape_of(workflow.state),
        "blocks": [b.to_json(readable=False) for b in blocks],
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Graph(
        workflow.name,
        workflow.description,
        workflow.input,
        workflow.output,
        workflow.state,
        tuple(blocks),
        version=getattr(workflow, "_version", None) or digest,
        fingerprint=digest,
        eager=workflow.eager,
    )


def _schema(spec: TypeSpec | None) -> dict[str, Any] | None:
    return spec.json_schema() if spec is not None else None


def _shape_of(spec: TypeSpec | None) -> Any:
    """A JSON Schema without its descriptions (a docstring or ``Field(description=)`` validates nothing)."""
    return _without_descriptions(spec.json_schema()) if spec is not None else None


def _without_descriptions(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: _without_descriptions(v)
            for k, v in schema.items()
            if not (k == "description" and isinstance(v, str))  # a property named "description" maps to a dict
        }
    if isinstance(schema, list):
        return [_without_descriptions(v) for v in schema]
    return schema
