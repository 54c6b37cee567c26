"""Guards a running step: renews its lease, and interrupts it on timeout or when its run has ended.

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

from . import conf
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
        try:
            while True:
                wait = heartbeat
                if self.timeout:
                    wait = min(wait, max(0.0, self._started + self.timeout - time.monotonic()))
                if self._stop.wait(wait):
                    return
                if self.timeout and time.monotonic() >= self._started + self.timeout:
                    return self._interrupt("timeout")
                renew = time.monotonic() - last_renewal >= lease / 3
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
