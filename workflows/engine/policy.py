"""A step's effective options: what its author wrote, else the workflow's, else the settings' defaults.

Resolved when a step is created or fails, never stored in the graph: a settings-only deploy (a new
``DEFAULT_RETRIES``) changes how steps run from then on without changing any workflow's version.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import conf
from ..definition.backoff import Backoff
from ..exceptions import WorkflowDefinitionError

if TYPE_CHECKING:
    from ..definition.graph import Graph, Node


def pool(node: Node) -> str:
    """The step's pool; "" for a nested workflow, which holds no slot (its child run's steps do)."""
    if node.kind == "workflow":
        return ""
    return node.pool or conf.get("DEFAULT_POOL")


def key(node: Node) -> tuple[Callable[..., Any] | None, int | None]:
    """The step's concurrency key function and limit: its own, else its workflow's (both in the node), else its
    pool's settings. A key without a limit anywhere has the limit 1."""
    if node.kind != "step":
        return None, None
    settings = conf.pools().get(pool(node))
    fn = node.concurrency_key or (settings.key_fn if settings else None)
    limit = node.key_limit if node.key_limit is not None else (settings.key_limit if settings else None)
    return fn, (limit or 1) if fn else None


def retries(node: Node) -> int:
    return conf.get("DEFAULT_RETRIES") if node.retries is None else node.retries


def backoff(node: Node) -> Backoff:
    return node.backoff or Backoff.coerce(conf.get("DEFAULT_BACKOFF"))


def timeout(node: Node) -> float | None:
    return conf.get("DEFAULT_TIMEOUT") if node.timeout is None else node.timeout


def check_commit(graph: Graph) -> None:
    """Called by ``Workflow.commit()``: an unknown pool is a definition error now, not a stuck step later."""
    for block in graph.blocks:
        for node in block.nodes:
            if node.kind == "step":
                conf.pool(pool(node))
                try:
                    key(node)  # a pool's concurrency_key named by a dotted path that does not import
                except ImportError as exc:
                    raise WorkflowDefinitionError(f"Pool {pool(node)!r}: concurrency_key: {exc}") from exc
