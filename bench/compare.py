"""The honest comparison: every ratio measured side by side in one process, interleaved, with CPU per step.

For each worker class, three sets of ``workers`` processes run at once, each on queues of its own, idle while
another is measured: workflows workers with ``EAGER_SECONDS`` 0 (one RQ job per step), workflows workers with the
default ``EAGER_SECONDS`` (eager: a job runs the next steps itself), and plain ``rq worker`` processes. A
repetition measures, in an order rotated each repetition (A,B,C,D / B,C,D,A ...):

- ``step``: ``runs`` runs of a 5-step no-op chain, one job per step;
- ``eager``: the same chain on the eager workers;
- ``raw1``: ``5 * runs`` raw RQ no-op jobs (one job per no-op: what ``step`` is compared with);
- ``raw5``: ``runs`` raw RQ jobs of 5 no-ops each (the same no-ops per job as an eager run: ``eager``'s peer);
- ``db``: the database's own small durable transactions/s (``bench.dblimit``), SimpleWorker block only.

Each measure's CPU seconds are summed over its workers' process trees (forked horses included), Redis, the
PostgreSQL server (postmaster and backends) and this process (the driver) (``bench.cpu``). Ratios are taken
within a repetition, then their median and range reported. Then, per mode, the handoff (a step body's return
-> the next body's start) of runs of a 5-step chain run one at a time; and each set's resident memory.

On PostgreSQL with ``unsafe``, the SimpleWorker block is repeated with fsync, synchronous_commit and
full_page_writes off (``ALTER SYSTEM`` + reload on the same cluster), then the settings are reset.

I/O: 4 workers per set; a foreach of ``io_items`` items of 50 ms each (ideal: items x 50 ms / 4) against as
many raw RQ jobs of 50 ms, and a 20-step chain of 50 ms steps (ideal: 1 s), per mode.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from . import cpu, dblimit
from .rawrq import QUEUE as RAW_QUEUE
from .rawrq import measure_jobs
from .services import WORKER_CLASSES, Procs
from .throughput import _handoff, _wait

MODES = {"step": "0", "eager": ""}  # mode -> BENCH_EAGER_SECONDS ("": the project's default)


def say(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


def rotated(items: list, rep: int) -> list:
    """``items`` starting at ``rep``: over repetitions each item comes first, last and in between in turn."""
    k = rep % len(items) if items else 0
    return items[k:] + items[:k]


def _sets(procs: Procs, n: int, worker_class: str) -> dict[str, list]:
    sets = {
        mode: procs.workflows_workers(n, worker_class, (f"bench-{mode}",), {"BENCH_EAGER_SECONDS": eager})
        for mode, eager in MODES.items()
    }
    sets["raw"] = procs.rq_workers(n, worker_class, RAW_QUEUE)
    return sets


def _pids(procs: list) -> list[int]:
    return [p.popen.pid for p in procs]


def _metered(workers: list, fn) -> tuple[float, dict[str, float]]:
    """(seconds ``fn`` took, CPU seconds per group: workers, driver, redis, database)."""
    meter = cpu.Meter({"workers": _pids(workers), **cpu.shared_groups()})
    with meter:
        started = time.perf_counter()
        fn()
        seconds = time.perf_counter() - started
    return seconds, meter.used


def _runs(flow, inputs: list, timeout: float, poll: float = 0.02) -> None:
    ids = [flow.start(i).pk for i in inputs]
    _wait(ids[0], ids[-1], len(ids), timeout, poll)
    from workflows.models import Run, RunStatus

    bad = Run.objects.filter(pk__in=ids).exclude(status=RunStatus.SUCCEEDED).count()
    if bad:
        raise RuntimeError(f"{bad} runs of {flow.name} did not succeed")


def _throughput(conn, sets: dict, runs: int, reps: int, db_seconds: float, timeout: float) -> dict:
    """Interleaved repetitions of step / eager / raw1 / raw5 (/ db): per variant, lists of steps/s and of CPU ms
    per step (and the CPU split by group)."""
    from .flows import NOOP5

    raw_names = [p.name for p in sets["raw"]]
    steps = 5 * runs
    variants = {
        "step": (sets["step"], lambda: _runs(NOOP5["step"], [{"value": i} for i in range(runs)], timeout)),
        "eager": (sets["eager"], lambda: _runs(NOOP5["eager"], [{"value": i} for i in range(runs)], timeout)),
        "raw1": (
            sets["raw"],
            lambda: measure_jobs(conn, raw_names, "bench.rawrq.noop", [(i,) for i in range(steps)], timeout),
        ),  # fmt: skip
        "raw5": (sets["raw"], lambda: measure_jobs(conn, raw_names, "bench.rawrq.noops", [(5,)] * runs, timeout)),
    }
    out: dict = {v: {"per_s": [], "cpu_ms": [], "cpu_split": []} for v in variants}
    if db_seconds:
        out["db"] = {"per_s": [], "cpu_ms": [], "cpu_split": []}
    for v, (_, fn) in variants.items():  # warm-up: imports, connections, the Workflow rows
        fn() if v.startswith("raw") else _runs(NOOP5[v], [{"value": i} for i in range(5)], timeout)
    for rep in range(reps):
        for v in rotated(list(out), rep):
            if v == "db":
                rate = [0.0]
                seconds, used = _metered([], lambda r=rate: r.__setitem__(0, dblimit.measure(db_seconds)))
                done, per_s = rate[0] * seconds, rate[0]
            else:
                seconds, used = _metered(*variants[v])
                done, per_s = steps, steps / seconds
            out[v]["per_s"].append(per_s)
            out[v]["cpu_ms"].append(sum(used.values()) / done * 1000)
            out[v]["cpu_split"].append({k: round(s / done * 1000, 3) for k, s in used.items()})
            say(f"rep {rep + 1} {v}: {per_s:.1f}/s, CPU {out[v]['cpu_ms'][-1]:.2f} ms per step")
    return out


def _handoffs(reps: int, runs: int, timeout: float) -> dict[str, list[dict]]:
    from .flows import STAMP5

    out: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for rep in range(reps):
        for mode in rotated(list(MODES), rep):
            out[mode].append(_handoff(runs, timeout, STAMP5[mode]))
    return out


def _set_unsafe(on: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for name in ("fsync", "synchronous_commit", "full_page_writes"):
            cursor.execute(f"ALTER SYSTEM SET {name} = off" if on else f"ALTER SYSTEM RESET {name}")
        cursor.execute("SELECT pg_reload_conf()")
    time.sleep(1)  # the server and its backends re-read their configuration on SIGHUP


def _io(conn, procs: Procs, params: dict, reps: int, timeout: float) -> dict:
    """foreach of 50 ms items and a 20-step chain of 50 ms steps, on ``io_workers`` SimpleWorkers per set."""
    from .flows import IO_CHAIN, IO_FOREACH

    n, items = int(params.get("io_workers", 4)), int(params.get("io_items", 1000))
    chains = int(params.get("io_chains", 3))
    sets = _sets(procs, n, WORKER_CLASSES["SimpleWorker"])
    raw_names = [p.name for p in sets["raw"]]
    variants = {
        "foreach step": (sets["step"], lambda: _runs(IO_FOREACH["step"], [list(range(items))], timeout, 0.05)),
        "foreach eager": (sets["eager"], lambda: _runs(IO_FOREACH["eager"], [list(range(items))], timeout, 0.05)),
        "foreach raw": (
            sets["raw"],
            lambda: measure_jobs(conn, raw_names, "bench.rawrq.sleep50", [(i,) for i in range(items)], timeout),
        ),  # fmt: skip
    }
    for mode in MODES:
        variants[f"chain {mode}"] = (sets[mode], lambda m=mode: [_runs(IO_CHAIN[m], [{"value": 0}], timeout, 0.005)
                                                                 for _ in range(chains)])  # fmt: skip
    ideal = {"foreach": items * 0.05 / n, "chain": chains * 20 * 0.05}
    count = {"foreach": items, "chain": chains * 20}
    _runs(IO_CHAIN["step"], [{"value": 0}], timeout)  # warm-up
    _runs(IO_CHAIN["eager"], [{"value": 0}], timeout)
    out: dict = {"workers": n, "items": items, "chain_steps": 20, "chains": chains,
                 **{v: {"seconds": [], "overhead_ms": [], "cpu_ms": []} for v in variants}}  # fmt: skip
    for rep in range(reps):
        for v in rotated(list(variants), rep):
            seconds, used = _metered(*variants[v])
            kind = v.split()[0]
            # per step, the time a worker spent beyond the 50 ms of the step itself
            per_worker = n if kind == "foreach" else 1
            out[v]["seconds"].append(seconds)
            out[v]["overhead_ms"].append((seconds - ideal[kind]) * per_worker / count[kind] * 1000)
            out[v]["cpu_ms"].append(sum(used.values()) / count[kind] * 1000)
            say(f"rep {rep + 1} {v}: {seconds:.2f}s (ideal {ideal[kind]:.2f}s)")
    procs.stop([p for s in sets.values() for p in s])
    return out


def run(params: dict) -> dict:
    import redis
    from django.conf import settings
    from django.db import connection

    reps = int(params.get("reps", 3))
    runs = int(params.get("runs", 200))
    workers = int(params.get("workers", 2))
    classes = params.get("worker_classes", ["SimpleWorker", "Worker"])
    db_seconds = float(params.get("db_seconds", 5))
    timeout = float(params.get("timeout", 600))
    conn = redis.Redis.from_url(settings.REDIS_URL)
    procs = Procs(env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir=Path(params["log_dir"]))
    result: dict = {"runs": runs, "steps": 5 * runs, "workers": workers, "reps": reps, "classes": {}}
    try:
        for label in classes:
            sets = _sets(procs, workers, WORKER_CLASSES[label])
            first = label == classes[0]
            part = _throughput(conn, sets, runs, reps, db_seconds if first else 0, timeout)
            part["handoff"] = _handoffs(reps, int(params.get("handoff_runs", 20)), timeout)
            part["rss_mb"] = {k: [cpu.rss_mb(p.popen.pid) for p in s] for k, s in sets.items()}
            part["steps_per_set"] = 5 * (5 + reps * runs)  # warm-up included: RSS is read after these
            result["classes"][label] = part
            if first and connection.vendor == "postgresql" and params.get("unsafe", True):
                say("PostgreSQL with fsync, synchronous_commit and full_page_writes off")
                _set_unsafe(True)
                try:
                    result["unsafe"] = _throughput(conn, sets, runs, reps, db_seconds, timeout)
                finally:
                    _set_unsafe(False)
            procs.stop([p for s in sets.values() for p in s])
        if params.get("io_items"):
            result["io"] = _io(conn, procs, params, reps, timeout)
    finally:
        procs.stop_all()
    return result
