"""One job per step against raw RQ, side by side: steps/s, CPU per step, handoff and the foreach gap.

    .venv/bin/python -m bench.hotpath [--db sqlite,postgresql] [--runs 100] [--reps 3] [--items 400]
                                      [--profile SECONDS]

A quick, focused look at the hot path of issue 18 (``make bench`` is the full table). Per database, in a process
of its own on a fresh migrated database (PostgreSQL: a throwaway durable cluster):

- 2 ``workflows_worker`` SimpleWorkers with ``EAGER_SECONDS`` 0 and 2 plain ``rq worker`` SimpleWorkers, idle
  in turn; each repetition times ``runs`` runs of ``bench-noop5`` then ``5 * runs`` raw no-op jobs. CPU per step:
  user + system time of every process involved (workers, Redis, the PostgreSQL server and its backends, this
  driver) over the measured interval, divided by the steps (jobs).
- handoff: runs of ``bench-stamp5`` one at a time; p50 from a step's body returning to the next body starting.
  Beside it RQ's own handoff: from enqueueing a raw job to its body starting on the idle raw workers.
- foreach gap: one run of ``bench-foreach`` (no-op items, 10 at once): per worker, from one item's
  ``finished_at`` to the next item's ``started_at`` on that worker; beside it the chain's handoff by the same
  StepRun timestamps. Once with one job per step, once with eager workers (``EAGER_SECONDS`` 1).
- ``--profile``: py-spy samples one of our workers for that many seconds of load; the shares of the hot spots.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from . import floor
from .services import SIMPLE, Procs


def say(message: str) -> None:
    print(f"hotpath: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--handoff-runs", type=int, default=15)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--profile", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        return _inner(args)
    from .run import Databases
    from .services import start_postgres, start_redis, stop_postgres, stop_redis

    work = Path(tempfile.mkdtemp(prefix="hotpath-"))
    redis_proc, redis_url = start_redis(work / "redis")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.hotpath_settings", "REDIS_URL": redis_url,
           "WORKFLOWS_LOG_LEVEL": "WARNING", "WORKFLOWS_VAR_DIR": str(work / "var"), "SECRET_KEY": "hotpath",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    results, cluster = {}, None
    try:
        for db in [d for d in args.db.split(",") if d]:
            server = None
            if db == "postgresql":
                cluster, server = start_postgres()
            url = Databases(db, work, server, env).fresh("hotpath")
            out = work / f"{db}.json"
            cmd = [sys.executable, "-m", "bench.hotpath", "--inner", "--out", str(out), "--runs", str(args.runs),
                   "--reps", str(args.reps), "--handoff-runs", str(args.handoff_runs), "--items", str(args.items),
                   "--profile", str(args.profile)]  # fmt: skip
            load = os.getloadavg()
            subprocess.run(cmd, env={**env, "DATABASE_URL": url, "HOTPATH_LOGS": str(work / db)}, check=True)
            results[db] = {**json.loads(out.read_text()), "load_before": load, "load_after": os.getloadavg()}
            if cluster is not None:
                stop_postgres(cluster)
                cluster = None
    finally:
        if cluster is not None:
            stop_postgres(cluster)
        stop_redis(redis_proc)
        shutil.rmtree(work, ignore_errors=True)
    text = report(results)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n\n" + text)
    return 0


def report(results: dict) -> str:
    lines = []
    for db, r in results.items():
        med = statistics.median
        ratio = [a / b for a, b in zip(r["ours"], r["raw"], strict=True)]
        cpu = [a / b for a, b in zip(r["ours_cpu"], r["raw_cpu"], strict=True)]
        load = "/".join(f"{x:.1f}" for x in r["load_before"][:1] + r["load_after"][:1])
        lines += [
            f"## {db} (load average {load} before/after)",
            f"steps/s one job per step {med(r['ours']):.1f} ({min(r['ours']):.1f}-{max(r['ours']):.1f}); "
            f"raw RQ {med(r['raw']):.1f} ({min(r['raw']):.1f}-{max(r['raw']):.1f}); "
            f"ratio {med(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f})",
            f"CPU per step: ours {med(r['ours_cpu']):.2f} ms, raw RQ {med(r['raw_cpu']):.2f} ms, "
            f"ratio {med(cpu):.2f} ({min(cpu):.2f}-{max(cpu):.2f})",
            f"handoff p50 (return -> start) {r['handoff_p50']:.2f} ms; "
            f"by StepRun timestamps {r['chain_gap_p50']:.2f} ms; raw RQ's own, enqueue -> body start "
            f"{r.get('rq_start_p50', float('nan')):.2f} ms",
            f"foreach gap p50 one job per step {r['foreach_gap_p50']:.2f} ms "
            f"({r['foreach_gap_p50'] / r['chain_gap_p50']:.2f}x the chain's); eager {r['eager_gap_p50']:.2f} ms",
        ]
        if r.get("floor"):
            lines += _floor_lines(r["floor"], med(r["raw_cpu"]))
        if r.get("profile"):
            lines.append("py-spy, share of a worker's samples (inclusive): " + ", ".join(
                f"{k} {v:.0%}" for k, v in r["profile"].items()))  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _floor_lines(f: dict, raw_cpu: float) -> list[str]:
    """``bench.floor``'s parts, CPU ms per step (median, min-max), in one process, and the ceiling they imply."""
    med = statistics.median

    def cell(name: str) -> str:
        return f"{med(f[name]):.2f} ({min(f[name]):.2f}-{max(f[name]):.2f})"

    rq, least = med(f["rq_job"]), med(f["least_orm"])
    return [
        "in one process (bench/floor.py), CPU ms per step: raw RQ job "
        + cell("rq_job")
        + "; ours, one job per step "
        + cell("ours")
        + "; ours without publication "
        + cell("ours_unpublished")
        + "; the least durable database "
        "work, ORM " + cell("least_orm") + ", literal SQL " + cell("least_sql"),
        f"ceiling of one job per step / raw RQ if all but that database work were free: ORM {rq / (rq + least):.2f}, "
        f"literal SQL {rq / (rq + med(f['least_sql'])):.2f}; ours in one process {rq / med(f['ours']):.2f}; "
        f"(multi-process raw RQ CPU {raw_cpu:.2f} ms)",
    ]


# --- inside the database's process ----------------------------------------------------------------------------


def _cpu(pids: list[int]) -> float:
    """Seconds of CPU used so far by these processes (and their reaped children)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def _server_pids() -> list[int]:
    """Redis, and the PostgreSQL server with its live backends (exited ones count in the postmaster's children)."""
    import psutil
    import redis
    from django.conf import settings
    from django.db import connection

    pids = [int(redis.Redis.from_url(settings.REDIS_URL).info()["process_id"])]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data = cursor.fetchone()[0]
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        pids += [postmaster, *(p.pid for p in psutil.Process(postmaster).children())]
    return pids


def _measured(fn, pids: list[int]) -> tuple[float, float]:
    """(seconds, CPU seconds of ``pids``, of their servers and of this process) of ``fn()``."""

    def every() -> float:  # the server's processes are listed each time: backends come and go
        return _cpu([*pids, *_server_pids(), os.getpid()])

    cpu, started = every(), time.perf_counter()
    fn()
    return time.perf_counter() - started, every() - cpu


def _inner(args) -> int:
    import django

    django.setup()
    import redis
    from django.conf import settings

    from . import throughput
    from .rawrq import QUEUE, measure, start_latency

    logs = Path(os.environ["HOTPATH_LOGS"])
    conn = redis.Redis.from_url(settings.REDIS_URL)
    procs = Procs(env={**os.environ, "WORKFLOWS_EAGER_SECONDS": "0"}, log_dir=logs)
    out: dict = {"ours": [], "raw": [], "ours_cpu": [], "raw_cpu": []}
    try:
        ours = procs.workflows_workers(2, SIMPLE)
        raw = procs.rq_workers(2, SIMPLE, QUEUE)
        names = [p.name for p in raw]
        throughput._workflows(10, 300)
        measure(conn, names, 50, 300)
        steps = 5 * args.runs
        for rep in range(args.reps):
            seconds, cpu = _measured(lambda: throughput._workflows(args.runs, 600), [p.popen.pid for p in ours])
            out["ours"].append(steps / seconds)
            out["ours_cpu"].append(cpu / steps * 1000)
            seconds, cpu = _measured(lambda: measure(conn, names, steps, 600), [p.popen.pid for p in raw])
            out["raw"].append(steps / seconds)
            out["raw_cpu"].append(cpu / steps * 1000)
            say(f"rep {rep + 1}: ours {out['ours'][-1]:.1f} steps/s {out['ours_cpu'][-1]:.2f} ms CPU; "
                f"raw {out['raw'][-1]:.1f} jobs/s {out['raw_cpu'][-1]:.2f} ms CPU")  # fmt: skip
        out["rq_start_p50"] = statistics.median(start_latency(conn, settings.REDIS_URL))
        procs.stop(raw)
        handoff = throughput._handoff(args.handoff_runs, 300)
        out["handoff_p50"] = statistics.median(handoff["return_start"])
        out["chain_gap_p50"] = statistics.median(handoff["finished_started"])
        out["foreach_gap_p50"] = _foreach_gap(args.items)
        if args.profile:
            out["profile"] = _profile(ours[0].popen.pid, args.profile, args.runs, logs)
        procs.stop(ours)
        eager = Procs(env={**os.environ, "WORKFLOWS_EAGER_SECONDS": "1"}, log_dir=logs / "eager")
        try:
            eager.workflows_workers(2, SIMPLE)
            throughput._workflows(5, 300)
            out["eager_gap_p50"] = _foreach_gap(args.items)
        finally:
            eager.stop_all()
        out["floor"] = floor.measure(min(args.runs, 60), lambda: _cpu([*_server_pids(), os.getpid()]), args.reps)
    finally:
        procs.stop_all()
    say(json.dumps({k: v for k, v in out.items() if k != "profile"}))
    args.out.write_text(json.dumps(out))
    return 0


def _foreach_gap(items: int) -> float:
    """p50 ms from one item's ``finished_at`` to the next item's ``started_at`` on the same worker."""
    from workflows.models import StepRun

    from .flows import fanout
    from .scale import _wait

    run = fanout.start({"n": items})
    _wait([run.pk], 600, 0.02)
    by_worker: dict[str, list] = {}
    for worker, began, ended in StepRun.objects.filter(run=run, kind="step").values_list(
        "worker", "started_at", "finished_at"
    ):
        by_worker.setdefault(worker, []).append((began, ended))
    gaps = []
    for rows in by_worker.values():
        rows.sort()
        gaps += [(b[0] - a[1]).total_seconds() * 1000 for a, b in zip(rows, rows[1:], strict=False)]
    return statistics.median(gaps)


HOT = {  # label -> substrings of a frame ("function (file)") counted inclusively
    "claim": ["claim (workflows/engine/steps.py"],
    "complete": ["complete_and_take_next (workflows/engine/steps.py"],
    "pool admission": ["pump (workflows/engine/dispatch.py"],
    "enqueue": ["enqueue (workflows/runtime/dispatch.py"],
    "publication": ["deliver (workflows/engine/publication.py"],
    "watchdog": ["__enter__ (workflows/runtime/watchdog.py", "__exit__ (workflows/runtime/watchdog.py"],
    "commit": ["commit (django/db/backends/base/base.py"],
    "SQL compile": ["as_sql (django/db/models/sql/compiler.py"],
    "execute_step": ["execute_step (workflows/runtime/jobs.py"],
}


def _profile(pid: int, seconds: float, runs: int, logs: Path) -> dict[str, float]:
    """py-spy on our worker ``pid`` while runs go through: share of samples per hot spot (``HOT``)."""
    from . import throughput
    from .deps import _pip

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists() and (reason := _pip(sys.executable, ["py-spy>=0.3"])):
        say(f"no profile: {reason}")
        return {}
    raw = logs / "profile.txt"
    cmd = [py_spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw", "-o", str(raw),
           "--nonblocking"]  # fmt: skip
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        throughput._workflows(runs // 4 or 1, 600)
    spy.wait(60)
    counts: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for label, needles in HOT.items():
            if any(needle in stack for needle in needles):
                counts[label] += int(n)
    shutil.copy(raw, Path("/tmp") / f"hotpath-profile-{os.environ.get('DATABASE_URL', '').split(':')[0]}.txt")
    return {k: counts[k] / total for k in HOT if total}


if __name__ == "__main__":
    sys.exit(main())
