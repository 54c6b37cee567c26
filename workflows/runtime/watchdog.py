"""Guards a running step: renews its lease, and interrupts it on timeout, when its run has ended or when its
worker shuts down (``request_shutdown``, after a grace period); and sends the publications its worker holds back
(``engine.publication.holding``) once the step has run for their window.

One guard thread per process polls the database every HEARTBEAT_SECONDS for each running step. To interrupt,
it sends SIGUSR1 to the step's thread, whose handler raises ``StepInterrupted`` in the step: a real signal also
breaks a blocking sleep or socket wait. An ``async def`` body (``runtime.aio``) is stopped by cancelling its task
instead, so that the coroutine stops at its ``await`` and its ``finally`` blocks and context managers run.
Signals work alike in RQ's forking Worker (the job runs in the work horse's main thread) and in SimpleWorker.
Off the main thread it falls back to an asynchronous exception.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time

from django.db import DatabaseError, connection

from .. import conf, engine
from ..engine.publication import current_hold
from ..exceptions import StepInterrupted
from ..store.models import StepRun

log = logging.getLogger(__name__)
SIGNAL = signal.SIGUSR1
_shutdown: tuple[int, float] | None = None  # (pid, monotonic time): this process's steps are interrupted from then


def request_shutdown(grace: float) -> None:
    """This process's worker is shutting down: running steps (and any it starts) may run ``grace`` more seconds,
    then are interrupted with reason "shutdown" (the guard notices within a heartbeat). An earlier deadline set
    before stays. Safe in a signal handler: it only sets a value."""
    global _shutdown
    at = time.monotonic() + max(0.0, grace)
    if shutting_down() and _shutdown[1] <= at:
        return
    _shutdown = (os.getpid(), at)


def shutting_down() -> bool:
    """Has this process's worker been asked to shut down? (A forked work horse does not inherit its parent's.)"""
    return _shutdown is not None and _shutdown[0] == os.getpid()


def _shutdown_at() -> float | None:
    return _shutdown[1] if shutting_down() else None


class Watchdog:
    """Context manager around one step body. The watching itself is done by the process's guard thread."""

    def __init__(self, step_run: StepRun, timeout: float | None, cancel_event: threading.Event) -> None:
        self.step_run = step_run
        self.timeout = timeout
        self.cancel_event = cancel_event
        self.reason: str | None = None
        self._armed = False
        self._done = False
        self._lock = threading.Lock()  # held by a check in progress; __exit__ waits for it
        self._loop = self._task = None  # the event loop and task of an async body (``attach``)

    def __enter__(self) -> Watchdog:
        self._target = threading.current_thread()
        self._on_main = self._target is threading.main_thread()
        if self._on_main:
            self._previous = signal.signal(SIGNAL, self._on_signal)
        self._started = self._last_renewal = time.monotonic()
        self._next_beat = self._started + float(conf.get("HEARTBEAT_SECONDS"))
        self._hold = current_hold()
        self._armed = True
        _guard().watch(self)
        return self

    def __exit__(self, *exc_info) -> bool:
        self._armed = False  # a signal arriving from now on is ignored
        _guard().unwatch(self)
        with self._lock:  # a check under way finishes (and sends its signal, if any) before the handler goes
            self._done = True
        if self._on_main:
            signal.signal(SIGNAL, self._previous)
        return False

    def attach(self, loop, task) -> None:
        """An async body runs as ``task`` on ``loop``: interrupting it cancels the task."""
        with self._lock:
            self._loop, self._task = loop, task
            if self.reason:  # interrupted before the task existed
                task.cancel()

    def detach(self) -> None:
        with self._lock:
            self._loop = self._task = None

    def _on_signal(self, signum, frame) -> None:
        if self._armed and self.reason:
            self._armed = False
            raise StepInterrupted(self.reason)

    def _interrupt(self, reason: str) -> None:
        self.reason = reason
        if reason == "canceled":
            self.cancel_event.set()
        if self._task is not None:  # called under self._lock, like attach and detach
            self._loop.call_soon_threadsafe(self._task.cancel)
        elif self._on_main:
            signal.pthread_kill(self._target.ident, SIGNAL)
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._target.ident), ctypes.py_object(StepInterrupted)
            )

    def wake_at(self) -> float:
        """When this step next needs the guard: its heartbeat, its timeout or its held publications."""
        wake = self._next_beat
        if self.timeout:
            wake = min(wake, self._started + self.timeout)
        shutdown = _shutdown_at()
        if shutdown is not None:
            wake = min(wake, shutdown)
        held = self._hold.due_at() if self._hold else None
        return wake if held is None else min(wake, held)

    def check(self, now: float) -> bool:
        """Do what is due at ``now`` (in the guard thread); False once nothing more is to be watched."""
        with self._lock:
            if self._done:
                return False
            if self.timeout and now >= self._started + self.timeout:
                self._interrupt("timeout")
                return False
            shutdown = _shutdown_at()
            if shutdown is not None and now >= shutdown:
                self._interrupt("shutdown")
                return False
            held = self._hold.due_at() if self._hold else None
            if held is not None and now >= held:
                self._hold.flush_later()  # never blocks the guard on the channel layer
            if now < self._next_beat:
                return True
            self._next_beat = now + float(conf.get("HEARTBEAT_SECONDS"))
            lease = float(conf.get("LEASE_SECONDS"))
            renew = now - self._last_renewal >= lease / 3
            try:
                ours = engine.still_running(self.step_run.pk, self.step_run.attempt, lease if renew else None)
            except DatabaseError as exc:  # the database restarts: keep the step, try again next beat
                log.warning("watchdog of step run %s cannot reach the database: %s", self.step_run.pk, exc)
                connection.close()
                return True
            if not ours:
                self._interrupt("canceled")
                return False
            if renew:
                self._last_renewal = time.monotonic()
            return True


class _Guard:
    """The thread that watches every running step of a process (one, in an RQ worker): started once, rather than
    a thread per step, which cost a fast step a tenth of its time."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._watches: set[Watchdog] = set()
        self._changed = threading.Condition()
        self._wakes_at = float("-inf")  # when the waiting thread wakes by itself (-inf: it is not waiting)
        threading.Thread(target=self._loop, name="workflows-watchdog", daemon=True).start()

    def watch(self, dog: Watchdog) -> None:
        """Watch ``dog``; the thread is woken only if it would sleep past ``dog``'s first check (a step's enter
        and exit then cost no thread switch: a fast step is done before its first heartbeat)."""
        with self._changed:
            self._watches.add(dog)
            if dog.wake_at() < self._wakes_at:
                self._changed.notify()

    def unwatch(self, dog: Watchdog) -> None:
        with self._changed:  # not woken: it finds the set changed when it wakes
            self._watches.discard(dog)

    def _loop(self) -> None:
        while True:
            with self._changed:
                if not self._watches:
                    connection.close()  # this thread's own; no step left to check on
                    self._sleep(float("inf"))
                    continue
                now = time.monotonic()
                due = [dog for dog in self._watches if dog.wake_at() <= now]
                if not due:
                    self._sleep(min(dog.wake_at() for dog in self._watches))
                    continue
            for dog in due:
                try:
                    keep = dog.check(time.monotonic())
                except Exception:
                    log.warning("watchdog of step run %s stopped", dog.step_run.pk, exc_info=True)
                    keep = False
                if not keep:
                    self.unwatch(dog)

    def _sleep(self, until: float) -> None:
        """Wait (holding ``_changed``) until ``until`` or a ``watch`` that needs it sooner."""
        self._wakes_at = until
        try:
            self._changed.wait(None if until == float("inf") else max(0.0, until - time.monotonic()))
        finally:
            self._wakes_at = float("-inf")


_guards: dict[int, _Guard] = {}
_guards_lock = threading.Lock()


def _guard() -> _Guard:
    pid = os.getpid()  # a forked RQ work horse does not inherit its parent's thread
    with _guards_lock:
        if pid not in _guards:
            _guards[pid] = _Guard()
        return _guards[pid]
