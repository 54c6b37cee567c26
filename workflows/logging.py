"""Log lines that say which run, step and attempt they come from: one logging configuration for a project.

The runtime binds the step attempt it is running (``bound``) in a context variable around the whole attempt: the
claim, the step body, the engine's transitions that report it. ``StepFilter`` copies it onto every record that
passes a handler, so the engine's, the worker's and the step's own lines (``logging.getLogger(...)`` in user code,
``ctx.log``) all carry ``run_id``, ``step`` and ``attempt``; lines from outside a step carry none. An ``async``
step's tasks inherit the context; a thread the step starts itself does not (``ctx.log`` names its step anyway).

``config()`` returns a ``LOGGING`` dict for a project's settings: human-readable lines by default, one JSON object
per line when ``json=True`` or the environment says ``WORKFLOWS_LOG_JSON=1``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

FIELDS = ("run_id", "step", "attempt")
_current: contextvars.ContextVar[tuple[int | None, str | None, int | None]] = contextvars.ContextVar(
    "workflows_step", default=(None, None, None)
)


@contextlib.contextmanager
def bound(run_id: int, step: str | None = None, attempt: int | None = None) -> Iterator[None]:
    """Within, this context's log records carry ``run_id``, ``step`` (a step path) and ``attempt``."""
    token = _current.set((run_id, step, attempt))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> dict[str, Any]:
    """The bound run id, step path and attempt (None each outside a step)."""
    return dict(zip(FIELDS, _current.get(), strict=True))


class StepFilter(logging.Filter):
    """Adds ``run_id``, ``step`` and ``attempt`` to each record (values passed in ``extra=`` win). Put it on a
    handler, so that it sees the records of every logger that reaches that handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in zip(FIELDS, _current.get(), strict=True):
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


class HumanFormatter(logging.Formatter):
    """``time LEVEL logger [run 42 step a/b#1 attempt 2] message``; the brackets only on a step's lines."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s%(where)s %(message)s", datefmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        run_id, step, attempt = (getattr(record, name, None) for name in FIELDS)
        parts = [f"run {run_id}"] if run_id is not None else []
        parts += [f"step {step}"] if step else []
        parts += [f"attempt {attempt}"] if attempt is not None else []
        record.where = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class JsonFormatter(_JsonFormatter):
    """One JSON object per line (python-json-logger): time, level, logger, message, run_id, step, attempt, and
    whatever else the call passed in ``extra=``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "asctime": "time"})
        super().__init__(*args or ("%(asctime)s %(levelname)s %(name)s %(message)s",), **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        for name in FIELDS:  # always present, null outside a step, so that log queries can rely on them
            log_data.setdefault(name, getattr(record, name, None))


def json_from_env() -> bool:
    return os.environ.get("WORKFLOWS_LOG_JSON", "").strip().lower() in {"1", "true", "yes", "on"}


def config(json: bool | None = None, level: str | None = None, root_level: str = "WARNING") -> dict[str, Any]:
    """A ``LOGGING`` dict: one console handler with ``StepFilter``, human-readable (or JSON: ``json=True``, or by
    default the ``WORKFLOWS_LOG_JSON`` environment variable). ``level``: the ``workflows`` loggers' level
    (default: ``WORKFLOWS_LOG_LEVEL`` or INFO); ``root_level``: everything else's."""
    json = json_from_env() if json is None else json
    formatter = "workflows.logging.JsonFormatter" if json else "workflows.logging.HumanFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"workflows_step": {"()": "workflows.logging.StepFilter"}},
        "formatters": {"workflows": {"()": formatter}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["workflows_step"], "formatter": "workflows"}
        },
        "root": {"handlers": ["console"], "level": root_level},
        "loggers": {"workflows": {"level": level or os.environ.get("WORKFLOWS_LOG_LEVEL", "INFO")}},
    }
