"""Prometheus metrics (prometheus_client), opt-in: ``WORKFLOWS["METRICS"] = True`` and the ``metrics`` extra.

Counters and histograms are recorded where things happen, in whichever process that is: runs and step attempts
from the committed journal events (a publication sink, so a transition counts once, after its commit), step
durations and queue waits around the step's execution in the worker, recovery actions in the recovery loop,
websocket connections and dropped frames in the consumer. Many processes write them, so they use
prometheus_client's multiprocess mode: each process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(or ``WORKFLOWS["METRICS_DIR"]``, exported as that variable before prometheus_client is first imported), and the
endpoint (``web.metrics``) sums the directory at scrape time. Pool gauges are read from the database at scrape
time (``PoolCollector``), so they are right whichever process serves the scrape.

Without the setting or the package, every function here returns at once.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from . import conf
from .store.models import RunEvent, StepRun, StepStatus
from .store.statements import workflow_name

log = logging.getLogger(__name__)
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
RUN_ENDS = {"run_succeeded": "succeeded", "run_failed": "failed", "run_canceled": "canceled"}
STEP_ENDS = {
    "step_succeeded": "succeeded",
    "step_failed": "failed",
    "step_canceled": "canceled",
    "step_suspended": "suspended",
}


def multiproc_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or conf.get("METRICS_DIR") or None


@functools.cache
def _metrics() -> Any:
    """The metric objects of this process (made once); None without prometheus_client."""
    directory = multiproc_dir()
    if directory and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.makedirs(directory, exist_ok=True)  # before the import: prometheus_client reads it then
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        import prometheus_client as pc
    except ImportError:
        log.warning("WORKFLOWS['METRICS'] is on but prometheus_client is not installed: pip install '...[metrics]'")
        return None
    registry = pc.CollectorRegistry(auto_describe=True)  # ours, not the global one: exposed by the endpoint only
    if directory:
        atexit.register(_process_exit)

    class M:
        runs_started = pc.Counter("workflows_runs_started", "Runs created", ["workflow"], registry=registry)
        runs_finished = pc.Counter(
            "workflows_runs_finished", "Runs ended, by status", ["workflow", "status"], registry=registry
        )
        step_attempts = pc.Counter(
            "workflows_step_attempts", "Step attempts ended, by outcome", ["workflow", "outcome"], registry=registry
        )
        step_duration = pc.Histogram(
            "workflows_step_duration_seconds", "A step attempt's run time in its worker, by outcome",
            ["workflow", "pool", "outcome"], buckets=SECONDS, registry=registry,
        )  # fmt: skip
        queue_wait = pc.Histogram(
            "workflows_step_queue_wait_seconds", "From queued (a pool slot taken) to claimed by a worker",
            ["workflow", "pool"], buckets=SECONDS, registry=registry,
        )  # fmt: skip
        recovery = pc.Counter(
            "workflows_recovery_actions", "What the recovery loop did, by action", ["action"], registry=registry
        )
        ws_opened = pc.Counter("workflows_websocket_connections_opened", "Websockets accepted", registry=registry)
        ws_open = pc.Gauge(
            "workflows_websocket_connections", "Websockets open now", registry=registry, multiprocess_mode="livesum"
        )
        ws_dropped = pc.Counter(
            "workflows_websocket_dropped_frames", "Data frames dropped for a slow client (it resyncs)",
            registry=registry,
        )  # fmt: skip

    M.client, M.registry = pc, registry
    return M


def _process_exit() -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid())  # its live gauges (open websockets) stop counting


def metrics() -> Any:
    """The metric objects, or None when metrics are off."""
    return _metrics() if conf.get("METRICS") else None


def publish(events: list[RunEvent]) -> None:
    """Publication sink: count runs started and ended and step attempts ended, from committed events."""
    m = metrics()
    if m is None:
        return
    for event in events:
        if event.kind == "run_created":
            m.runs_started.labels(workflow_name(event.run)).inc()
        elif event.kind in RUN_ENDS:
            m.runs_finished.labels(workflow_name(event.run), RUN_ENDS[event.kind]).inc()
        elif event.kind in STEP_ENDS:
            m.step_attempts.labels(workflow_name(event.run), STEP_ENDS[event.kind]).inc()


def step_claimed(sr: StepRun) -> None:
    """A worker claimed ``sr``: its wait in the queue (from taking a pool slot), if it was queued."""
    m = metrics()
    if m is not None and sr.queued_at and sr.started_at:
        wait = max(0.0, (sr.started_at - sr.queued_at).total_seconds())
        m.queue_wait.labels(workflow_name(sr.run), sr.pool).observe(wait)


def step_ran(sr: StepRun, outcome: str, seconds: float) -> None:
    m = metrics()
    if m is not None:
        m.step_duration.labels(workflow_name(sr.run), sr.pool, outcome).observe(seconds)


def recovered(done: dict[str, int]) -> None:
    """A recovery tick's counts by action (expired leases, re-enqueued jobs, fired timers...)."""
    m = metrics()
    if m is not None:
        for action, n in done.items():
            if n:
                m.recovery.labels(action).inc(n)


def websocket(opened: bool) -> None:
    m = metrics()
    if m is not None:
        if opened:
            m.ws_opened.inc()
            m.ws_open.inc()
        else:
            m.ws_open.dec()


def frames_dropped(n: int) -> None:
    m = metrics()
    if m is not None and n:
        m.ws_dropped.inc(n)


class PoolCollector:
    """Pool gauges read from the database at scrape time: right whichever process serves the scrape."""

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        now = timezone.now()
        due = Q(status=StepStatus.PENDING) & (Q(due_at__isnull=True) | Q(due_at__lte=now))
        rows = (
            StepRun.objects.filter(Q(status__in=(StepStatus.QUEUED, StepStatus.RUNNING)) | due)
            .values("pool", "status")
            .annotate(n=Count("id"))
        )
        counts = {(row["pool"], row["status"]): row["n"] for row in rows}
        families = {
            "limit": GaugeMetricFamily("workflows_pool_limit", "A pool's max_parallel", labels=["pool"]),
            StepStatus.RUNNING: GaugeMetricFamily("workflows_pool_running", "Steps running", labels=["pool"]),
            StepStatus.QUEUED: GaugeMetricFamily("workflows_pool_queued", "Steps queued (slot taken)", labels=["pool"]),
            StepStatus.PENDING: GaugeMetricFamily(
                "workflows_pool_waiting", "Steps ready and due, waiting for a slot", labels=["pool"]
            ),
        }
        for name, pool in conf.pools().items():
            families["limit"].add_metric([name], pool.max_parallel)
            for status in (StepStatus.RUNNING, StepStatus.QUEUED, StepStatus.PENDING):
                families[status].add_metric([name], counts.get((name, status), 0))
        yield from families.values()


def exposition() -> tuple[bytes, str]:
    """The scrape's body and content type: every process's values (multiprocess mode) or this process's, plus
    the pool gauges."""
    m = metrics()
    if m is None:
        raise RuntimeError("metrics are off (WORKFLOWS['METRICS']) or prometheus_client is not installed")
    pc = m.client
    registry = pc.CollectorRegistry()
    if multiproc_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=multiproc_dir())
    else:
        registry.register(_Forward(m.registry))
    registry.register(PoolCollector())
    return pc.generate_latest(registry), pc.CONTENT_TYPE_LATEST


class _Forward:
    """This process's own metrics, in single-process mode (in-process workers, tests)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Any]:
        return self.registry.collect()
