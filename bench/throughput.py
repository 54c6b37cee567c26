"""Throughput of a 5-step no-op chain against raw RQ on the same Redis, and the handoff latency.

For each worker class: 2 ``workflows_worker`` processes and 2 plain ``rq worker`` processes (same class, same
JSON serializer, same Redis) run side by side, idle in turn. Each repetition times ``runs`` runs of
``bench-noop5`` (from the first ``start()`` until every run has succeeded) and then ``5 * runs`` raw no-op RQ
jobs (from the first enqueue until the workers have finished them). Repetitions alternate, so drift in the
machine's load hits both.

Handoff: ``handoff_runs`` runs of ``bench-stamp5``, one at a time on idle workers. Per pair of consecutive
steps, two measures:

- return -> start: the previous step's body returned (its own clock, in its output) -> the next step's body
  began. This is the handoff as user code sees it: everything the engine and RQ do in between.
- ``finished_at`` -> ``started_at``: the StepRun timestamps. ``finished_at`` is taken inside the completion
  transaction once the run's row is locked (after the output was validated and the transaction began);
  ``started_at`` inside the claim transaction once the run's row is locked (after the worker dequeued the job,
  forked if it forks, and looked the run up). So it leaves out both ends: output validation and BEGIN + lock
  of the completion, and the claim's commit, context set-up and input validation of the next step.

The segments in between (from the rows' ``created_at`` and ``queued_at``) are reported too, for the profile.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .rawrq import QUEUE as RAW_QUEUE
from .rawrq import measure as measure_raw
from .services import WORKER_CLASSES, Procs
from .stats import percentile


def say(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def run(params: dict) -> dict:
    import redis
    from django.conf import settings

    runs = int(params.get("runs", 200))
    reps = int(params.get("reps", 3))
    workers = int(params.get("workers", 2))
    handoff_runs = int(params.get("handoff_runs", 30))
    classes = params.get("worker_classes", ["SimpleWorker", "Worker"])
    timeout = float(params.get("timeout", 600))
    log_dir = Path(params["log_dir"])
    conn = redis.Redis.from_url(settings.REDIS_URL)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result: dict = {"runs": runs, "steps": 5 * runs, "workers": workers, "classes": {}}
    for label in classes:
        procs = Procs(env=env, log_dir=log_dir / label)
        try:
            ours = procs.workflows_workers(workers, WORKER_CLASSES[label])
            raw = procs.rq_workers(workers, WORKER_CLASSES[label], RAW_QUEUE)
            raw_names = [p.name for p in raw]
            _workflows(min(10, runs), timeout)  # warm-up: imports, connections, the Workflow rows
            measure_raw(conn, raw_names, min(50, 5 * runs), timeout)
            ours_rate, raw_rate, failed = [], [], 0
            for rep in range(reps):
                seconds, bad = _workflows(runs, timeout)
                failed += bad
                ours_rate.append(5 * runs / seconds)
                raw_rate.append(5 * runs / measure_raw(conn, raw_names, 5 * runs, timeout))
                say(f"{label} rep {rep + 1}: workflows {ours_rate[-1]:.1f} steps/s, raw RQ {raw_rate[-1]:.1f} jobs/s")
            procs.stop(raw)
            handoff = [_handoff(handoff_runs, timeout) for _ in range(reps)]
            say(f"{label} handoff p50 {_p(handoff, 'return_start', 50):.1f} ms")
            procs.stop(ours)
        finally:
            procs.stop_all()
        result["classes"][label] = {
            "workflows_steps_per_s": ours_rate,
            "raw_jobs_per_s": raw_rate,
            "ratio": [a / b for a, b in zip(ours_rate, raw_rate, strict=True)],
            "failed_runs": failed,
            "handoff": handoff,
        }
    return result


def _p(handoff: list[dict], key: str, p: float) -> float:
    return percentile([v for rep in handoff for v in rep[key]], p)


def _wait(first: int, last: int, count: int, timeout: float, poll: float) -> None:
    from workflows.models import RUN_TERMINAL, Run

    deadline = time.monotonic() + timeout
    while Run.objects.filter(pk__gte=first, pk__lte=last, status__in=RUN_TERMINAL).count() < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs {first}..{last} not finished after {timeout}s")
        time.sleep(poll)


def _workflows(runs: int, timeout: float) -> tuple[float, int]:
    """Seconds from the first start() until ``runs`` runs of bench-noop5 have finished; and how many failed."""
    from workflows.models import Run, RunStatus

    from .flows import noop5

    started = time.perf_counter()
    ids = [noop5.start({"value": i}).pk for i in range(runs)]
    _wait(ids[0], ids[-1], runs, timeout, 0.02)
    seconds = time.perf_counter() - started
    bad = Run.objects.filter(pk__in=ids).exclude(status=RunStatus.SUCCEEDED).count()
    return seconds, bad


def _handoff(runs: int, timeout: float, flow=None) -> dict[str, list[float]]:
    """Milliseconds between consecutive steps of ``runs`` runs of bench-stamp5 (or ``flow``), one at a time."""
    from workflows.models import StepRun, StepStatus

    from .flows import stamp5

    ids = []
    for _ in range(runs):
        run = (flow or stamp5).start({})
        _wait(run.pk, run.pk, 1, timeout, 0.005)
        ids.append(run.pk)
    rows = (
        StepRun.objects.filter(run_id__in=ids, status=StepStatus.SUCCEEDED)
        .order_by("run_id", "block")
        .values("run_id", "created_at", "queued_at", "started_at", "finished_at", "output")
    )
    by_run: dict[int, list[dict]] = {}
    for row in rows:
        by_run.setdefault(row["run_id"], []).append(row)
    keys = ["return_start", "finished_started", "return_finished", "finished_created", "created_queued",
            "queued_started", "started_began"]  # fmt: skip
    out: dict[str, list[float]] = {k: [] for k in keys}
    for steps in by_run.values():
        for a, b in zip(steps, steps[1:], strict=False):
            t = {k: b[k].timestamp() for k in ("created_at", "queued_at", "started_at")}
            fin = a["finished_at"].timestamp()
            pairs = {
                "return_start": (a["output"]["returned"], b["output"]["began"]),
                "finished_started": (fin, t["started_at"]),
                "return_finished": (a["output"]["returned"], fin),
                "finished_created": (fin, t["created_at"]),
                "created_queued": (t["created_at"], t["queued_at"]),
                "queued_started": (t["queued_at"], t["started_at"]),
                "started_began": (t["started_at"], b["output"]["began"]),
            }
            for k, (x, y) in pairs.items():
                out[k].append((y - x) * 1000)
    return out
