"""What the definition layer needs from the engine, reached through one port wired at start-up.

``Workflow.start()``, ``ctx.set_state()``, ``ctx.log()`` and the store's ``run.cancel()`` are part of the public
API, but the definition and store layers may not import the engine (the layers import downwards only, enforced by
import-linter). ``WorkflowsConfig.ready()`` hands the engine to ``connect`` instead; until then, using one of
these raises ``ImproperlyConfigured``-like ``WorkflowsError`` that says what is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..exceptions import WorkflowsError

if TYPE_CHECKING:
    from .dsl import Workflow
    from .graph import Graph


class Engine(Protocol):
    """The engine's operations the lower layers call (``workflows.engine`` implements it)."""

    def start(self, flow: Workflow, data: Any, **options: Any) -> Any: ...
    def step_result(self, run_id: int, step_id: str) -> Any: ...
    def set_state(self, run_id: int, value: Any) -> Any: ...
    def append(self, run_id: int, kind: str, step: str = "", /, **data: Any) -> None: ...
    def cancel(self, run_id: int) -> Any: ...
    def resume(self, run_id: int, step: str | None = None, label: str | None = None, data: Any = None) -> Any: ...
    def send_event(self, run_id: int, name: str, data: Any = None) -> None: ...
    def restart(self, run_id: int, from_step: str, input: Any = None) -> Any: ...
    def retry(self, run_id: int) -> Any: ...
    def check_commit(self, graph: Graph) -> None: ...


_engine: Engine | None = None


def connect(engine: Engine) -> None:
    global _engine
    _engine = engine


def engine() -> Engine:
    if _engine is None:
        raise WorkflowsError(
            "The workflows app is not loaded: add 'workflows' to INSTALLED_APPS and call django.setup()"
        )
    return _engine
