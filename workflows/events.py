"""The run journal: events appended inside the engine's transaction, published after commit.

A worker running fast steps back to back commits a transition every few milliseconds; publishing each one costs
more than the step. Inside ``holding(window)`` a thread's publications wait up to ``window`` seconds and go out
together (one message per run and group instead of one per transition): at the first commit after the window,
at the end of the block, or from the step's watchdog when a step body outlasts the window.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from . import statements
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
        statements.insert_events(self.events)
        self._written.extend(self.events)
        self.events = []

    def _publish(self) -> None:
        events, self._written = self._written, []
        if events:
            publish(events)


def append(run_id: int, kind: str, step: str = "", /, **data: Any) -> None:
    """Append one event outside a transition (a step's log line or progress), published at once."""
    record(run_id, kind, step, **data)
    hold = current_hold()
    if hold is not None:  # a step body's own line is news now: it goes out with what was held before it
        hold.flush()


def record(run_id: int, kind: str, step: str = "", /, **data: Any) -> None:
    """Append one event in a transaction of its own, published like a transition's (held within a job)."""
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
    hold = current_hold()
    if hold is None:
        deliver(events)
    elif hold.add(events):  # the oldest held events have waited their window
        hold.flush()


def deliver(events: list[RunEvent]) -> None:
    """Hand committed events to every publisher now."""
    for fn in _publishers:
        try:
            fn(events)
        except Exception:  # publication may be late, never fatal to a transition
            log.warning("publishing %d events failed", len(events), exc_info=True)


# --- holding publications back -------------------------------------------------------------------------------


class Hold:
    """A thread's publications held back for up to ``window`` seconds; sent together, in commit order."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._events: list[RunEvent] = []
        self._since = 0.0
        self._scheduled = False
        self._lock = threading.Lock()  # guards the fields above
        self._sending = threading.Lock()  # one flush at a time, so that batches go out in order

    def add(self, events: list[RunEvent]) -> bool:
        """Hold ``events``; True when the oldest held one has waited the whole window."""
        with self._lock:
            if not self._events:
                self._since = time.monotonic()
            self._events.extend(events)
            return time.monotonic() - self._since >= self.window

    def due_at(self) -> float | None:
        """When the held events are due (``time.monotonic()``); None if nothing waits for a flush."""
        with self._lock:
            return None if not self._events or self._scheduled else self._since + self.window

    def flush(self) -> None:
        with self._sending:
            with self._lock:
                events, self._events, self._scheduled = self._events, [], False
            if events:
                deliver(events)

    def flush_later(self) -> None:
        """Flush from the background thread (for a thread that must not block, e.g. a step's watchdog)."""
        with self._lock:
            if not self._events or self._scheduled:
                return
            self._scheduled = True
        background().submit(self._flush_in_background)

    def _flush_in_background(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()  # this thread's own, if a publisher read from the database


_local = threading.local()


@contextlib.contextmanager
def holding(window: float) -> Iterator[Hold | None]:
    """Within, this thread's publications are held up to ``window`` seconds (0: not at all); flushed on exit."""
    if window <= 0 or current_hold() is not None:
        yield current_hold()
        return
    hold = _local.hold = Hold(window)
    try:
        yield hold
    finally:
        _local.hold = None
        hold.flush()


def current_hold() -> Hold | None:
    """The hold of the calling thread, if it is inside ``holding``."""
    return getattr(_local, "hold", None)


_background: dict[int, concurrent.futures.ThreadPoolExecutor] = {}


def background() -> concurrent.futures.ThreadPoolExecutor:
    """A thread (per process) for publication work that the calling thread cannot or should not do itself."""
    pid = os.getpid()  # a forked RQ work horse does not inherit its parent's thread
    if pid not in _background:
        _background[pid] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="workflows-publish")
    return _background[pid]
