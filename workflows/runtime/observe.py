"""What one step attempt tells the operator, around its execution in the worker: its log lines carry the run, step
and attempt (``workflows.logging``), it is a span of the run's trace, current while the body runs
(``workflows.tracing``), and its queue wait and run time are measured (``workflows.metrics``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from .. import logging as step_logging
from .. import metrics, tracing
from ..store.models import StepRun


class Attempt:
    """How the attempt ended, as the runtime saw it (the engine may still ignore a late report)."""

    status = "succeeded"
    error: BaseException | None = None

    def ended(self, status: str, error: BaseException | None = None) -> None:
        self.status, self.error = status, error


@contextlib.contextmanager
def attempt(sr: StepRun) -> Iterator[Attempt]:
    """Around a claimed step's execution and the report of its outcome; the caller says how it ended."""
    seen = Attempt()
    started = time.monotonic()
    with step_logging.bound(sr.run_id, sr.path, sr.attempt), tracing.step_span(sr) as span:
        metrics.step_claimed(sr)
        try:
            yield seen
        except BaseException as exc:  # the report itself failed (the database stayed away): the lease recovers it
            seen.ended("error", exc)
            raise
        finally:
            tracing.end_step(span, seen.status, seen.error)
            metrics.step_ran(sr, seen.status, time.monotonic() - started)
