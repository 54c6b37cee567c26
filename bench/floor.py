"""Where a step's CPU goes, and the least a durable step can cost: the floor behind the one-job-per-step ratio.

Run by ``bench.hotpath`` in its driver process once its workers are stopped: everything below runs in this one
process (an in-process RQ ``SimpleWorker`` in burst mode), so the CPU of a measure is this process's plus
Redis's (and the PostgreSQL server's with its backends), per step:

- ``rq_job``: raw RQ, one no-op job (enqueued here, run here): what RQ itself costs per job;
- ``ours``: one job per step (``EAGER_SECONDS`` 0), ``runs`` runs of ``bench-noop5`` started and run here;
- ``ours_unpublished``: the same with the live publication switched off (no channel-layer sends);
- ``least_orm``: the least database work a durable step needs, through Django's ORM, with no RQ at all: two
  transactions, as the engine makes (claim: the step's compare-and-set to running, the run's next journal
  seq, one journal event; completion: the step's compare-and-set to succeeded with its output, the next
  step's row, the run's seq and cursor, two journal events);
- ``least_sql``: the same statements as literal SQL on Django's cursor (no ORM).

``ceiling`` = ``rq_job / (rq_job + least_orm)``: the best steps/s ratio to raw RQ that one job per step can reach
when CPU is the limit (both sides saturate the same cores) and everything but that database work were free.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone


def _per_step(fn: Callable[[], None], steps: int, cpu: Callable[[], float]) -> float:
    """CPU milliseconds per step of ``fn()`` (this process and the servers)."""
    before = cpu()
    fn()
    return (cpu() - before) / steps * 1000


def _burst(queues) -> None:
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    worker = SimpleWorker(queues, connection=queues[0].connection, serializer=JSONSerializer,
                          name=f"floor-{uuid.uuid4().hex[:8]}")  # fmt: skip
    worker.work(burst=True, logging_level="WARNING")


def _raw_jobs(steps: int) -> None:
    import redis
    from django.conf import settings
    from rq import Queue
    from rq.serializers import JSONSerializer

    queue = Queue("bench-floor", connection=redis.Redis.from_url(settings.REDIS_URL), serializer=JSONSerializer)
    for i in range(steps):
        queue.enqueue("bench.rawrq.noop", i, job_timeout=-1, result_ttl=0, failure_ttl=86400)
    _burst([queue])


def _our_runs(runs: int) -> None:
    from workflows import conf
    from workflows.models import Run, RunStatus
    from workflows.runtime import dispatch

    from .flows import noop5

    ids = [noop5.start({"value": i}).pk for i in range(runs)]
    _burst([dispatch.get_queue(q) for q in conf.queue_names()])
    done = Run.objects.filter(pk__in=ids, status=RunStatus.SUCCEEDED).count()
    if done != runs:
        raise RuntimeError(f"floor: {runs - done} of {runs} runs did not succeed in the burst")


def _unpublished(runs: int) -> None:
    from workflows.engine import publication

    sinks, publication._sinks[:] = list(publication._sinks), []
    try:
        _our_runs(runs)
    finally:
        publication._sinks[:] = sinks


def _least_orm(steps: int) -> None:
    """The two transactions of each step, through the ORM, on one run's rows (a chain of ``steps`` steps)."""
    from django.db.models import F

    from workflows.models import Run, RunEvent, StepRun, StepStatus

    from .flows import noop5

    run = noop5.start({"value": 0})
    step = StepRun.objects.create(run=run, block=0, path="least-0", step_id="least", status=StepStatus.QUEUED,
                                  pool="default", input={"value": 0})  # fmt: skip
    for i in range(steps):
        now = timezone.now()
        with transaction.atomic():  # claim
            if not StepRun.objects.filter(pk=step.pk, status=StepStatus.QUEUED).update(
                status=StepStatus.RUNNING, started_at=now, lease_expires_at=now, worker="floor"
            ):
                raise RuntimeError("claim lost")
            Run.objects.filter(pk=run.pk).update(last_seq=F("last_seq") + 1, updated_at=now)
            seq = Run.objects.values_list("last_seq", flat=True).get(pk=run.pk)
            RunEvent.objects.create(run_id=run.pk, seq=seq, kind="step_running", step=step.path,
                                    data={"attempt": 1, "worker": "floor"}, at=now)  # fmt: skip
        now = timezone.now()
        with transaction.atomic():  # completion
            if not StepRun.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(
                status=StepStatus.SUCCEEDED, finished_at=now, output={"value": i}
            ):
                raise RuntimeError("completion lost")
            step = StepRun.objects.create(run_id=run.pk, block=0, path=f"least-{i + 1}", step_id="least",
                                          status=StepStatus.QUEUED, pool="default", input={"value": i},
                                          queued_at=now)  # fmt: skip
            Run.objects.filter(pk=run.pk).update(last_seq=F("last_seq") + 2, cursor=F("cursor") + 1, updated_at=now)
            seq = Run.objects.values_list("last_seq", flat=True).get(pk=run.pk)
            RunEvent.objects.bulk_create([
                RunEvent(run_id=run.pk, seq=seq - 1, kind="step_succeeded", step=f"least-{i}", data={"attempt": 1},
                         at=now),
                RunEvent(run_id=run.pk, seq=seq, kind="step_queued", step=step.path, data={}, at=now),
            ])  # fmt: skip


def _least_sql(steps: int) -> None:
    """``_least_orm``'s statements as literal SQL (``RETURNING`` for the run's seq: one statement fewer)."""
    from workflows.models import StepStatus

    from .flows import noop5

    run = noop5.start({"value": 0}).pk
    insert_step = (
        "INSERT INTO workflows_steprun (run_id, block, path, step_id, kind, label, hook, attempt, status, pool, "
        "priority, concurrency_key, input, traceback, worker, created_at, queued_at) "
        "VALUES (%s, 0, %s, 'least', 'step', '', '', 1, %s, 'default', 0, '', %s, '', '', %s, %s) RETURNING id"
    )
    bump = 'UPDATE workflows_run SET last_seq = last_seq + %s, "cursor" = "cursor" + %s, updated_at = %s WHERE id = %s '
    event = "INSERT INTO workflows_runevent (run_id, seq, kind, step, data, at) VALUES (%s, %s, %s, %s, %s, %s)"
    with connection.cursor() as cur:
        now = timezone.now()
        cur.execute(insert_step, [run, "least-x0", StepStatus.QUEUED, json.dumps({"value": 0}), now, now])
        step = cur.fetchone()[0]
        for i in range(steps):
            now = timezone.now()
            with transaction.atomic():
                cur.execute("UPDATE workflows_steprun SET status = %s, started_at = %s, lease_expires_at = %s, "
                            "worker = 'floor' WHERE id = %s AND status = %s",
                            [StepStatus.RUNNING, now, now, step, StepStatus.QUEUED])  # fmt: skip
                cur.execute(bump + "RETURNING last_seq", [1, 0, now, run])
                seq = cur.fetchone()[0]
                cur.execute(event, [run, seq, "step_running", f"least-x{i}", '{"attempt": 1}', now])
            now, value = timezone.now(), json.dumps({"value": i})
            with transaction.atomic():
                cur.execute("UPDATE workflows_steprun SET status = %s, finished_at = %s, output = %s "
                            "WHERE id = %s AND status = %s",
                            [StepStatus.SUCCEEDED, now, value, step, StepStatus.RUNNING])  # fmt: skip
                cur.execute(insert_step, [run, f"least-x{i + 1}", StepStatus.QUEUED, value, now, now])
                step = cur.fetchone()[0]
                cur.execute(bump + "RETURNING last_seq", [2, 1, now, run])
                seq = cur.fetchone()[0]
                cur.execute(event, [run, seq - 1, "step_succeeded", f"least-x{i}", '{"attempt": 1}', now])
                cur.execute(event, [run, seq, "step_queued", f"least-x{i + 1}", "{}", now])


def measure(runs: int, cpu: Callable[[], float], reps: int = 3) -> dict[str, list[float]]:
    """CPU ms per step of each part (module docstring), ``reps`` interleaved repetitions of ``5 * runs`` steps."""
    steps = 5 * runs
    parts = {
        "rq_job": lambda: _raw_jobs(steps),
        "ours": lambda: _our_runs(runs),
        "ours_unpublished": lambda: _unpublished(runs),
        "least_orm": lambda: _least_orm(steps),
        "least_sql": lambda: _least_sql(steps),
    }
    _our_runs(2)  # warm-up: imports, the workflow's row, connections
    _least_orm(5)
    out: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(reps):
        for name, fn in parts.items():
            out[name].append(_per_step(fn, steps, cpu))
        time.sleep(0.2)
    out["pid"] = [float(os.getpid())]
    return out
