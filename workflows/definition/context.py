"""What user code sees: ``StepContext`` inside a step, ``Context`` in conditions and map functions."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import Bail, Suspend
from . import ports

step_log = logging.getLogger("workflows.step")  # ctx.log's lines also go to the process's log


LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "run_id", "step", "attempt"}


@dataclass(frozen=True)
class Context:
    """Given to branch conditions and ``map`` functions."""

    data: Any
    run_input: Any
    run_id: int
    iteration: int = 1
    state: Any = None

    def result(self, step_id: str) -> Any:
        """JSON output of the latest successful attempt of ``step_id`` in this run (None if it has none)."""
        return ports.engine().step_result(self.run_id, step_id)


@dataclass(frozen=True)
class StepContext:
    """Given to a step function as its first argument."""

    run_id: int
    step_id: str
    path: str
    attempt: int
    run_input: Any
    resume_data: Any = None
    suspend_payload: Any = None
    step_run_id: int = 0
    block: int = 0
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    _state: dict = field(default_factory=dict, repr=False, compare=False)  # {"value": typed, "spec": TypeSpec}

    @property
    def idempotency_key(self) -> str:
        """A key naming this step of this run, the same on every attempt: pass it to an external service
        (``Idempotency-Key`` header, a unique column) so that a step that runs again after a crash does its side
        effect once. Distinct for each loop iteration, foreach item, block and run (a restart is a new run)."""
        return f"wf:{self.run_id}:{self.block}:{self.path}"

    def idempotency_key_for(self, name: str) -> str:
        """``idempotency_key`` for one of several side effects of this step (e.g. ``"charge"``, ``"email"``)."""
        return f"{self.idempotency_key}:{name}"

    @property
    def state(self) -> Any:
        """The run's state (typed by ``Workflow(state=...)``), as of this step's start or its last set_state."""
        return self._state.get("value")

    def set_state(self, value: Any) -> None:
        """Replace the run's state; stored at once and visible to later steps and nested workflows."""
        stored = ports.engine().set_state(self.run_id, value)
        spec = self._state.get("spec")
        self._state["value"] = spec.validate(stored) if spec else stored

    def suspend(self, payload: Any = None, label: str | None = None) -> None:
        """Park this step until ``run.resume(...)``; it then runs again from the top with ``ctx.resume_data``."""
        raise Suspend(payload, label)

    def result(self, step_id: str) -> Any:
        return ports.engine().step_result(self.run_id, step_id)

    def bail(self, output: Any = None) -> None:
        """End the whole run now as succeeded with ``output``."""
        raise Bail(output)

    def log(self, message: str, *, level: str = "info", **data: Any) -> None:
        """Store a log line in the run's journal (streamed live to the dashboard), and log it at ``level``
        (debug, info, warning, error). ``data`` (JSON) is stored with it and shown on the run page's history."""
        level = str(level).lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"ctx.log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        where = {"run_id": self.run_id, "step": self.path, "attempt": self.attempt}  # from any thread of the step
        extra = {**where, **{k: v for k, v in data.items() if k not in _RESERVED}}
        step_log.log(LOG_LEVELS[level], "%s", message, extra=extra)
        if level != "info":  # the default is not stored: most lines are info
            data = {**data, "level": level}
        ports.engine().append(self.run_id, "step_log", self.path, message=str(message), attempt=self.attempt, **data)

    def progress(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, float(fraction)))
        ports.engine().append(self.run_id, "step_progress", self.path, fraction=fraction, message=message)

    @property
    def cancelled(self) -> bool:
        """True once the run was cancelled; a long step may check it to stop early and cleanly."""
        return self._cancel.is_set()
