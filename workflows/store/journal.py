"""The run journal: events collected inside a transition and written with gapless seqs, published after commit.

Publication is a port: the engine connects its publisher (``engine.publication``), which holds a worker's
publications back and hands them to the live layer. The journal knows only that some function takes a committed
transaction's events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import statements
from .models import Run, RunEvent

Publisher = Callable[[list[RunEvent], bool], None]  # (events, urgent)
_publisher: Publisher | None = None


def connect_publisher(fn: Publisher) -> None:
    """Have ``fn(events, urgent)`` called after each commit with the transaction's new events."""
    global _publisher
    _publisher = fn


class Journal:
    """Collects one transaction's events for one locked run; ``flush`` writes them with gapless seqs.

    Its publish hook is registered at the first event, before any pump hook of the same transaction, so that
    after commit a run's events go out in seq order. ``urgent`` events (a step's own log line) are published at
    once rather than held back with a worker's transitions.
    """

    def __init__(self, run: Run, *, urgent: bool = False) -> None:
        self.run = run
        self.urgent = urgent
        self.events: list[RunEvent] = []
        self._written: list[RunEvent] = []
        self.slot = None  # the pool slot a finishing step offers to its successor (engine.handoff)

    def add(self, kind: str, step: str = "", /, **data: Any) -> None:
        if not self.events and not self._written:
            transaction.on_commit(self._publish)
        self.run.last_seq += 1
        self.events.append(
            RunEvent(run=self.run, seq=self.run.last_seq, kind=kind, step=step, data=data, at=timezone.now())
        )

    def flush(self) -> None:
        if not self.events:
            return
        statements.insert_events(self.events)
        self._written.extend(self.events)
        self.events = []

    def _publish(self) -> None:
        events, self._written = self._written, []
        if events and _publisher is not None:
            _publisher(events, self.urgent)
