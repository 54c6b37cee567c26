"""The RQ worker classes ``workflows_worker`` runs: RQ's, plus a graceful shutdown and a dead work horse's report.

Graceful shutdown. SIGTERM (a deploy, systemd, Kubernetes, ``manage.py up``) or SIGINT makes RQ stop taking jobs
and wait for the running one (its warm shutdown). The step being run then has ``SHUTDOWN_GRACE_SECONDS`` to
finish; after that the watchdog interrupts it (reason "shutdown", the same signal as a cancel or a timeout) and
the engine hands it back (``engine.hand_back``): the attempt fails as ``WorkerShutdown``, the journal says
``step_interrupted``, and a new attempt is queued at once, for another worker, without using the step's retries.
A stopping worker runs no successor itself (eager execution): those go to the queue. A second signal, more than a
second after the first, interrupts the step at once; a third is RQ's cold shutdown.

- ``SimpleWorker`` runs the step in its own main thread: the signal starts the step's grace in-process.
- ``Worker`` (forking) runs it in a work horse, which sits in a process group of its own and so is not signalled
  with its worker (RQ's horse would die of a SIGTERM): the worker passes SIGTERM on to the horse, whose handler
  starts the grace there. A supervisor that signals every process (systemd's control-group kill) reaches both; the
  horse takes the two as one, like RQ's worker does.

A dead work horse. When a forking worker's horse dies without reporting its step (SIGKILL, out of memory,
``os._exit``: a non-zero exit status), the worker fails the steps still running under the horse's name as
``WorkerLost`` at once (``engine.worker_lost``), instead of leaving them to their lease; they run again on the
``WORKER_LOST_RETRIES`` budget.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from datetime import timedelta

from django.db import connections
from rq import worker as rq_worker
from rq.utils import now

from .. import conf, engine
from . import jobs, watchdog

TWICE = timedelta(seconds=1)  # RQ's rule: a second signal within a second of the first is a copy of it


def grace() -> float:
    return float(conf.get("SHUTDOWN_GRACE_SECONDS"))


class GracefulShutdown:
    """What both worker classes add to RQ's: the first signal starts the running step's grace, the second ends it."""

    _hurried = False
    beat_job: str | None = None  # the RQ job being run, for the heartbeat thread (runtime.heartbeats)

    def execute_job(self, job, queue) -> None:
        self.beat_job = job.id
        try:
            super().execute_job(job, queue)
        finally:
            self.beat_job = None

    def busy(self) -> bool:
        """Is a step (an RQ job) running now?"""
        raise NotImplementedError

    def begin_shutdown(self, seconds: float) -> None:
        """Give the running step ``seconds`` more (0: interrupt it now)."""
        raise NotImplementedError

    def handle_warm_shutdown_request(self) -> None:  # RQ calls it on the first SIGTERM or SIGINT
        super().handle_warm_shutdown_request()
        if self.busy():
            self.log.warning(
                "Worker %s: shutting down; the running step has %gs to finish, then runs again elsewhere "
                "(signal again to interrupt it now)",
                self.name,
                grace(),
            )
        self.begin_shutdown(grace())

    def request_force_stop(self, signum, frame) -> None:  # RQ's handler from the second signal on
        first = self._shutdown_requested_date
        if first is not None and now() - first < TWICE:
            return
        if self.busy() and not self._hurried:
            self._hurried = True
            self.log.warning("Worker %s: interrupting the running step now", self.name)
            self.begin_shutdown(0.0)
            return
        super().request_force_stop(signum, frame)


class SimpleWorker(GracefulShutdown, rq_worker.SimpleWorker):
    """RQ's in-process worker, shutting down gracefully."""

    def busy(self) -> bool:
        return self.get_state() == rq_worker.WorkerStatus.BUSY

    def begin_shutdown(self, seconds: float) -> None:
        watchdog.request_shutdown(seconds)


class Worker(GracefulShutdown, rq_worker.Worker):
    """RQ's forking worker, shutting down gracefully and reporting a dead work horse at once."""

    _horse = 0  # the last horse's pid, kept after RQ forgets it
    _horse_status: int | None = None  # its wait status, once reaped
    _horse_signalled_at: float | None = None  # in the horse: when it got its first SIGTERM

    def busy(self) -> bool:
        return bool(self.horse_pid)

    def begin_shutdown(self, seconds: float) -> None:
        """Pass SIGTERM on to the horse: a first one starts its step's grace, a later one (past a second) ends it."""
        if self.horse_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.horse_pid, signal.SIGTERM)

    # --- in the horse

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()
        self._horse_signalled_at = None
        signal.signal(signal.SIGTERM, self._horse_on_sigterm)
        if self._shutdown_requested_date is not None:  # the worker was told before this horse could be
            self._horse_on_sigterm(signal.SIGTERM, None)

    def _horse_on_sigterm(self, signum, frame) -> None:
        at = time.monotonic()
        if self._horse_signalled_at is None:
            self._horse_signalled_at = at
            watchdog.request_shutdown(grace())
        elif at - self._horse_signalled_at >= TWICE.total_seconds():
            watchdog.request_shutdown(0.0)

    # --- in the worker

    def fork_work_horse(self, job, queue) -> None:
        self._horse_status = None
        super().fork_work_horse(job, queue)
        self._horse = self.horse_pid
        if self._shutdown_requested_date is not None:  # a signal came while forking: the horse may have missed it
            self.begin_shutdown(grace())

    def wait_for_horse(self):
        pid, status, rusage = super().wait_for_horse()
        if pid:
            self._horse_status = status
        return pid, status, rusage

    def execute_job(self, job, queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:  # also after a cold shutdown, which killed the horse
            self._report_dead_horse()

    def _report_dead_horse(self) -> None:
        pid, status = self._horse, self._horse_status
        self._horse, self._horse_status = 0, None
        if not pid or status is None or (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            return  # not reaped (then it may live on: its steps keep their lease), or it ended normally
        why = f"Work horse {pid} of worker {self.name} died ({exit_reason(status)})"
        try:
            lost = engine.worker_lost(jobs.worker_name(pid), why)
        except Exception:  # the database is away: the steps' leases expire and recovery retries them
            self.log.warning("Worker %s: %s; could not report its steps", self.name, why, exc_info=True)
            return
        finally:
            connections.close_all()  # the next horse must not inherit this process's database socket
        if lost:
            self.log.warning("Worker %s: %s; %d step attempt(s) failed as WorkerLost", self.name, why, lost)


def exit_reason(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name if number in signal.valid_signals() else "?"
        return f"killed by signal {number}, {name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def graceful(cls: type) -> type:
    """The class to run for the worker class ``cls`` (``WORKER_CLASS``): one of the above for RQ's ``Worker`` and
    ``SimpleWorker``; a subclass mixing them in for a subclass of those; any other class as it is."""
    if issubclass(cls, GracefulShutdown):
        return cls
    for rq_class, ours in ((rq_worker.SimpleWorker, SimpleWorker), (rq_worker.Worker, Worker)):
        if cls is rq_class:
            return ours
        if issubclass(cls, rq_class):
            return type(cls.__name__, (ours, cls), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return cls
