"""The run journal: events appended inside the engine's transaction, published after commit."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from .models import Run, RunEvent

log = logging.getLogger(__name__)


class Journal:
    """Collects one transaction's events for one locked run; ``flush`` writes them with gapless seqs.

    Its publish hook is registered at the first event, before any pump hook of the same transaction, so that
    after commit a run's events go out in seq order.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
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
        RunEvent.objects.bulk_create(self.events)
        self._written.extend(self.events)
        self.events = []

    def _publish(self) -> None:
        events, self._written = self._written, []
        if events:
            publish(events)


def append(run_id: int, kind: str, step: str = "", /, **data: Any) -> None:
    """Append one event outside a transition (a step's log line or progress)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().only("id", "last_seq").get(pk=run_id)
        journal = Journal(run)
        journal.add(kind, step, **data)
        journal.flush()
        Run.objects.filter(pk=run_id).update(last_seq=run.last_seq)


_publishers: list = []


def add_publisher(fn) -> None:
    """Register ``fn(events)``, called after commit with each transaction's new events."""
    _publishers.append(fn)


def publish(events: list[RunEvent]) -> None:
    for fn in _publishers:
        try:
            fn(events)
        except Exception:  # publication may be late, never fatal to a transition
            log.warning("publishing %d events failed", len(events), exc_info=True)
