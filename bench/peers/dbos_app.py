"""DBOS Transact: 200 runs of a 5-step no-op workflow through a DBOS queue, 2 executor processes.

Each executor runs one workflow at a time (``worker_concurrency=1``, like an RQ worker running one job at a
time) and polls the queue every 10 ms (DBOS's default is 1 s). A workflow's steps run in the executor's own
thread, one checkpoint row per step in the system database: SQLite or PostgreSQL, whichever the row of the
table is about. Runs are enqueued with ``DBOSClient``; timed from the first enqueue until all have succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from dbos import DBOS, DBOSClient

QUEUE = "bench"
APP = "bench-dbos"


@DBOS.step()
def noop(x: int) -> int:
    return x


@DBOS.workflow(name="chain5")
def chain5(x: int) -> int:
    for _ in range(5):
        x = noop(x)
    return x


def database_url() -> str:
    url = os.environ["DBOS_DATABASE_URL"]
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


def executor() -> None:
    """An executor process: launch DBOS, listen to the queue, run until killed."""
    DBOS(config={"name": APP, "system_database_url": database_url(), "log_level": "WARNING"})
    DBOS.launch()
    DBOS.register_queue(QUEUE, worker_concurrency=1, polling_interval_sec=0.01)
    print("executor ready", flush=True)
    while True:
        time.sleep(3600)


def _runs(client: DBOSClient, n: int, timeout: float) -> float:
    started = time.perf_counter()
    ids = [client.enqueue({"queue_name": QUEUE, "workflow_name": "chain5"}, i).workflow_id for i in range(n)]
    deadline = started + timeout
    while True:
        done = client.list_workflows(workflow_ids=ids, status=["SUCCESS", "ERROR"], load_input=False,
                                     load_output=False)  # fmt: skip
        if len(done) >= n:
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(f"dbos: {len(done)}/{n} workflows after {timeout}s")
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    failed = [w for w in done if w.status != "SUCCESS"]
    if failed:
        raise RuntimeError(f"dbos: {len(failed)} workflows failed: {failed[0]}")
    return seconds


def main() -> int:
    from bench import cpu
    from bench.services import Procs, wait_for

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path)
    parser.add_argument("--executor", action="store_true", help="run as an executor process")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=Path("var/bench/logs"))
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    if args.executor:
        executor()
        return 0
    procs = Procs(env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir=args.log_dir)
    first = procs.start("dbos-0", sys.executable, "-m", "bench.peers.dbos_app", "--executor")
    wait_for(lambda: first.check() and "executor ready" in first.output(), 120, 0.1, "the first DBOS executor")
    for i in range(1, args.workers):  # one at a time: the first one creates the system database's tables
        p = procs.start(f"dbos-{i}", sys.executable, "-m", "bench.peers.dbos_app", "--executor")
        wait_for(lambda p=p: p.check() and "executor ready" in p.output(), 120, 0.1, "a DBOS executor")
    client = DBOSClient(system_database_url=database_url())
    try:
        _runs(client, 10, 60)  # warm-up
        rates, cpu_ms = [], []
        for _ in range(args.reps):
            meter = cpu.Meter({"workers": [p.popen.pid for p in procs.started], **cpu.shared_groups()})
            with meter:
                rates.append(5 * args.runs / _runs(client, args.runs, args.timeout))
            cpu_ms.append(meter.total / (5 * args.runs) * 1000)
            print(f"    dbos: {rates[-1]:.1f} steps/s, CPU {cpu_ms[-1]:.2f} ms per step", file=sys.stderr, flush=True)
    finally:
        client.destroy()
        procs.stop_all()
    from importlib.metadata import version

    kind = "PostgreSQL" if "postgres" in database_url() else "SQLite"
    note = f"DBOS {version('dbos')}, 2 executors x worker_concurrency=1, queue polled every 10 ms, {kind}"
    args.out.write_text(json.dumps({"steps_per_s": rates, "cpu_ms": cpu_ms, "note": note}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
