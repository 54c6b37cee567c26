"""Guards a running step: renews its lease, and interrupts it on timeout or when its run has ended; and sends
the publications its worker holds back (``events.holding``) once the step has run for their window.

A background thread polls the database every HEARTBEAT_SECONDS. To interrupt, it sends SIGUSR1 to the main
thread, whose handler raises ``StepInterrupted`` in the step: a real signal also breaks a blocking sleep or
socket wait. This works alike in RQ's forking Worker (the job runs in the work horse's main thread) and in
SimpleWorker. Off the main thread it falls back to an asynchronous exception.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
import time
from datetime import timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from . import conf, events
from .exceptions import StepInterrupted
from .models import RUN_ACTIVE, StepRun, StepStatus

log = logging.getLogger(__name__)
SIGNAL = signal.SIGUSR1


class Watchdog:
    def __init__(self, step_run: StepRun, timeout: float | None, cancel_event: threading.Event) -> None:
        self.step_run = step_run
        self.timeout = timeout
        self.cancel_event = cancel_event
        self.reason: str | None = None
        self._armed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watchdog:
        self._target = threading.current_thread()
        self._on_main = self._target is threading.main_thread()
        if self._on_main:
            self._previous = signal.signal(SIGNAL, self._on_signal)
        self._started = time.monotonic()
        self._hold = events.current_hold()
        self._armed = True
        self._thread = threading.Thread(target=self._loop, name=f"watchdog-{self.step_run.pk}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> bool:
        self._armed = False  # a signal arriving from now on is ignored
        self._stop.set()
        if self._thread:
            self._thread.join()
        if self._on_main:
            signal.signal(SIGNAL, self._previous)
        return False

    def _on_signal(self, signum, frame) -> None:
        if self._armed and self.reason:
            self._armed = False
            raise StepInterrupted(self.reason)

    def _interrupt(self, reason: str) -> None:
        self.reason = reason
        if reason == "canceled":
            self.cancel_event.set()
        if self._on_main:
            signal.pthread_kill(self._target.ident, SIGNAL)
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._target.ident), ctypes.py_object(StepInterrupted)
            )

    def _loop(self) -> None:
        heartbeat = float(conf.get("HEARTBEAT_SECONDS"))
        lease = float(conf.get("LEASE_SECONDS"))
        last_renewal = time.monotonic()
        next_beat = last_renewal + heartbeat
        try:
            while True:
                wake = next_beat
                if self.timeout:
                    wake = min(wake, self._started + self.timeout)
                held = self._hold.due_at() if self._hold else None
                if held is not None:
                    wake = min(wake, held)
                if self._stop.wait(max(0.0, wake - time.monotonic())):
                    return
                now = time.monotonic()
                if self.timeout and now >= self._started + self.timeout:
                    return self._interrupt("timeout")
                if held is not None and now >= held:
                    self._hold.flush_later()  # never blocks this thread on the channel layer
                if now < next_beat:  # woke for the publications: the heartbeat is still ahead
                    continue
                next_beat = now + heartbeat
                renew = now - last_renewal >= lease / 3
                try:
                    ours = self._still_ours(renew, lease)
                except DatabaseError as exc:  # the database restarts: keep the step, try again next beat
                    log.warning("watchdog of step run %s cannot reach the database: %s", self.step_run.pk, exc)
                    connection.close()
                    continue
                if not ours:
                    return self._interrupt("canceled")
                if renew:
                    last_renewal = time.monotonic()
        except Exception:
            log.warning("watchdog of step run %s stopped", self.step_run.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    def _still_ours(self, renew: bool, lease: float) -> bool:
        """Is the step still running this attempt in an active run? Renews the lease when asked."""
        mine = StepRun.objects.filter(
            pk=self.step_run.pk, attempt=self.step_run.attempt, status=StepStatus.RUNNING, run__status__in=RUN_ACTIVE
        )
        if renew:
            return bool(mine.update(lease_expires_at=timezone.now() + timedelta(seconds=lease)))
        return mine.exists()
