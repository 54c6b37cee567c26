"""Scale: per-step overhead of a 10-step chain against a foreach of 1,000 items; bytes stored per step.

With 2 SimpleWorker processes on idle queues:

- chain: ``chain_runs`` runs of ``bench-noop10``, one at a time: wall time of a run / 10. Latency-bound (one
  step runs at a time): each step pays a full handoff.
- foreach: one run of ``bench-foreach`` over ``foreach_items`` items (10 at once, the pool's limit): wall time
  / items. Throughput-bound (both workers busy). Also: how long ``start()`` takes (it creates every item's row
  in one transaction), and the pace of the last tenth of the items against the first tenth (above 1: items get
  slower as the run grows).
- amplification: one run of ``bench-pass10`` (10 steps passing a ~1 MB JSON value along, as their input and
  output): bytes of JSON in its rows' JSON columns ÷ bytes of the input (``bench.storage``; target ≤ 2), and
  how much the three tables grew on disk.
- storage: one run of ``bench-loop`` for each size (a loop of n sequential steps, one row per step), and the
  bytes of that run's rows: its ``Run``, ``StepRun`` and ``RunEvent`` rows, indexes left out. PostgreSQL:
  ``pg_column_size`` of each row; SQLite: the stored length of each column. Linear when the bytes added per
  step from 10 to 100 steps and from 100 to 1,000 steps agree (within 15%).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from .services import SIMPLE, Procs


def say(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def run(params: dict) -> dict:
    reps = int(params.get("reps", 3))
    chain_runs = int(params.get("chain_runs", 5))
    items = int(params.get("foreach_items", 1000))
    sizes = [int(n) for n in params.get("storage_sizes", [10, 100, 1000])]
    timeout = float(params.get("timeout", 900))
    procs = Procs(env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir=Path(params["log_dir"]))
    result: dict = {"foreach_items": items, "chain": [], "foreach": [], "foreach_start": [], "foreach_growth": []}
    try:
        procs.workflows_workers(int(params.get("workers", 2)), SIMPLE)
        _chain(1, timeout)  # warm-up
        for rep in range(reps):
            result["chain"].append(_chain(chain_runs, timeout))
            per_step, start_ms, growth = _foreach(items, timeout)
            result["foreach"].append(per_step)
            result["foreach_start"].append(start_ms)
            result["foreach_growth"].append(growth)
            say(f"rep {rep + 1}: chain {result['chain'][-1]:.1f} ms/step, foreach {per_step:.1f} ms/step")
        result["storage"] = _storage(sizes, timeout)
        result["amplification"] = _amplification(int(params.get("value_bytes", 1_000_000)), timeout)
    finally:
        procs.stop_all()
    return result


def _wait(run_ids: list[int], timeout: float, poll: float = 0.005) -> None:
    from workflows.models import RUN_TERMINAL, Run, RunStatus

    deadline = time.monotonic() + timeout
    while Run.objects.filter(pk__in=run_ids, status__in=RUN_TERMINAL).count() < len(run_ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs {run_ids} not finished after {timeout}s")
        time.sleep(poll)
    bad = list(Run.objects.filter(pk__in=run_ids).exclude(status=RunStatus.SUCCEEDED).values_list("pk", "error"))
    if bad:
        raise RuntimeError(f"runs did not succeed: {bad}")


def _chain(runs: int, timeout: float) -> float:
    """Median over ``runs`` runs of bench-noop10 of (wall time of the run / 10), in ms."""
    from .flows import noop10

    per_step = []
    for i in range(runs):
        started = time.perf_counter()
        run = noop10.start({"value": i})
        _wait([run.pk], timeout)
        per_step.append((time.perf_counter() - started) / 10 * 1000)
    return statistics.median(per_step)


def _foreach(items: int, timeout: float) -> tuple[float, float, float]:
    """(ms per item, ms of start(), pace of the last tenth / pace of the first tenth)."""
    from workflows.models import StepRun

    from .flows import fanout

    started = time.perf_counter()
    run = fanout.start({"n": items})
    start_ms = (time.perf_counter() - started) * 1000
    _wait([run.pk], timeout, 0.02)
    per_step = (time.perf_counter() - started) / items * 1000
    done = sorted(
        f.timestamp() for f in StepRun.objects.filter(run=run, kind="step").values_list("finished_at", flat=True)
    )
    tenth = max(1, len(done) // 10)
    first, last = done[tenth - 1] - done[0], done[-1] - done[-tenth]
    return per_step, start_ms, (last / first if first > 0 else float("nan"))


def _storage(sizes: list[int], timeout: float) -> dict:
    from .flows import loop

    runs = {n: loop.start({"value": n}).pk for n in sizes}
    _wait(list(runs.values()), timeout, 0.05)
    out = {"sizes": sizes, "bytes": {}, "run_row_bytes": {}}
    for n, run_id in runs.items():
        total, run_row = _bytes_of_run(run_id)
        out["bytes"][str(n)] = total
        out["run_row_bytes"][str(n)] = run_row
    say("storage: " + ", ".join(f"{n} steps {b / int(n):.0f} B/step" for n, b in out["bytes"].items()))
    b = [out["bytes"][str(n)] for n in sizes]
    marginal = [(b[i + 1] - b[i]) / (sizes[i + 1] - sizes[i]) for i in range(len(sizes) - 1)]
    out["marginal_bytes_per_step"] = marginal
    out["linear"] = bool(marginal) and max(marginal) <= 1.15 * min(marginal)
    return out


def _amplification(value_bytes: int, timeout: float) -> dict:
    """Bytes stored per byte of user data: a 10-step chain passing a ``value_bytes`` JSON value along."""
    from workflows.store.values import size_of

    from .flows import pass10
    from .storage import json_bytes, table_bytes, value_of_size

    value = value_of_size(value_bytes)
    before = table_bytes()
    run = pass10.start(value)
    _wait([run.pk], timeout, 0.05)
    stored, size = json_bytes(run.pk), size_of(value)
    out = {"input_bytes": size, "json_bytes": stored, "ratio": round(stored / size, 3),
           "table_growth_bytes": table_bytes() - before}  # fmt: skip
    say(f"amplification: {stored:,} B of JSON for {size:,} B of input ({out['ratio']}x)")
    return out


def _bytes_of_run(run_id: int) -> tuple[int, int]:
    """(bytes of the run's Run + StepRun + RunEvent rows, bytes of its Run row alone), indexes left out."""
    from django.db import connection

    from workflows.models import Run, RunEvent, StepRun

    def size(model, column: str) -> int:
        table = connection.ops.quote_name(model._meta.db_table)
        if connection.vendor == "postgresql":
            expr = "pg_column_size(t.*)"
        else:
            cols = [connection.ops.quote_name(f.column) for f in model._meta.concrete_fields]
            expr = " + ".join(f"COALESCE(LENGTH(CAST(t.{c} AS BLOB)), 0)" for c in cols)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(SUM({expr}), 0) FROM {table} t WHERE t.{column} = %s", [run_id])
            return int(cursor.fetchone()[0])

    run_row = size(Run, "id")
    return run_row + size(StepRun, "run_id") + size(RunEvent, "run_id"), run_row
