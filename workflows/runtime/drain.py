"""``drain()``: in-process RQ workers and due timers, until no work is left (``workflows.testing`` exports it)."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from django.utils import timezone
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from .. import conf
from ..store.models import Debounce, StepRun, StepStatus
from . import dispatch, jobs, recovery


def _worker() -> SimpleWorker:
    queues = [dispatch.get_queue(q) for q in conf.queue_names()]
    return SimpleWorker(
        queues, connection=queues[0].connection, serializer=JSONSerializer, name=f"drain-{uuid.uuid4().hex}"
    )


def _runnable(horizon) -> bool:
    """Work a worker could do now, or a timer due before ``horizon``."""
    return (
        StepRun.objects.filter(status__in=(StepStatus.QUEUED, StepStatus.RUNNING)).exclude(kind="workflow").exists()
        or StepRun.objects.filter(status=StepStatus.PENDING, due_at__lte=horizon).exists()
        or StepRun.objects.filter(status=StepStatus.WAITING, due_at__lte=horizon).exclude(kind="workflow").exists()
        or Debounce.objects.filter(due_at__lte=horizon).exists()  # a debounced run that starts by then
    )


def drain(timeout: float = 30) -> None:
    """Run everything runnable now or due within ``timeout`` seconds.

    Returns (never raises) when only later timers, suspended steps or event waits remain; raises TimeoutError
    if runnable work is still left after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    horizon = timezone.now() + timedelta(seconds=timeout)
    worker = _worker()
    jobs.eager_deadline = deadline  # a job runs its successors itself only until the deadline
    try:
        while True:
            recovery.tick(requeue_after=0)
            worked = worker.work(burst=True, max_jobs=1, logging_level="WARNING")  # one job: check the deadline
            if not _runnable(horizon):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"drain(): work still runnable after {timeout}s")
            if not worked:
                time.sleep(0.01)
    finally:
        jobs.eager_deadline = float("inf")
