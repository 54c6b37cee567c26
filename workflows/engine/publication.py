"""After-commit publication of journal events, held back within a worker's job.

A worker running fast steps back to back commits a transition every few milliseconds; publishing each one costs
more than the step. Inside ``holding(window)`` a thread's publications wait up to ``window`` seconds and go out
together (one message per run and group instead of one per transition): at the first commit after the window,
at the end of the block, when an urgent event (a step's log line) commits, or from the step's watchdog when a
step body outlasts the window.

The sinks that receive the events (the live layer's channel-layer sender) are connected at start-up
(``add_sink``): the engine does not import the layers above it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

from django.db import connections

from ..store.models import RunEvent

log = logging.getLogger(__name__)
_sinks: list[Callable[[list[RunEvent]], None]] = []


def add_sink(fn: Callable[[list[RunEvent]], None]) -> None:
    """Register ``fn(events)``, called with committed events (once; a sink added twice is kept once)."""
    if fn not in _sinks:
        _sinks.append(fn)


def publish(events: list[RunEvent], urgent: bool = False) -> None:
    """The journal's publisher: deliver now, or hold within ``holding`` (flushed at once when ``urgent``)."""
    hold = current_hold()
    if hold is None:
        deliver(events)
    elif hold.add(events) or urgent:  # the oldest held events have waited their window, or this is news now
        hold.flush()


def deliver(events: list[RunEvent]) -> None:
    """Hand committed events to every sink now."""
    for fn in _sinks:
        try:
            fn(events)
        except Exception:  # publication may be late, never fatal to a transition
            log.warning("publishing %d events failed", len(events), exc_info=True)


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
            connections.close_all()  # this thread's own, if a sink read from the database


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
