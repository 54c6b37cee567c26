"""Celery: 200 chains of 5 no-op tasks, 2 worker processes (``--pool solo``: one task at a time in the worker
process itself, like RQ's SimpleWorker), broker on the same Redis, no result backend; the last task of each
chain counts itself in Redis. Timed from the first ``apply_async`` until every chain has ended.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from celery import Celery, chain

QUEUE = "bench-celery"
DONE = "bench:celery:done"


def broker_url() -> str:
    url = os.environ["REDIS_URL"]
    return "redis+socket://" + url[len("unix://") :] if url.startswith("unix://") else url


app = Celery("bench", broker=broker_url())
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.celery.noop")
def noop(x):
    return x


_redis = []


@app.task(name="bench.celery.last")
def last(x):
    if not _redis:
        import redis

        _redis.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
    _redis[0].incr(DONE)
    return x


def _chains(conn, n: int, timeout: float) -> float:
    before = int(conn.get(DONE) or 0)
    started = time.perf_counter()
    for i in range(n):
        chain(noop.s(i), noop.s(), noop.s(), noop.s(), last.s()).apply_async()
    deadline = started + timeout
    while int(conn.get(DONE) or 0) - before < n:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"celery: {int(conn.get(DONE) or 0) - before}/{n} chains after {timeout}s")
        time.sleep(0.002)
    return time.perf_counter() - started


def main() -> int:
    import redis

    from bench import cpu
    from bench.services import Procs, wait_for

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chains", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=Path("var/bench/logs"))
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    conn = redis.Redis.from_url(os.environ["REDIS_URL"])
    procs = Procs(env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir=args.log_dir)
    celery = str(Path(sys.executable).with_name("celery"))
    try:
        for i in range(args.workers):
            procs.start(f"celery-{i}", celery, "-A", "bench.peers.celery_app", "worker", "--pool", "solo",
                        "--concurrency", "1", "-Q", QUEUE, "-n", f"bench{i}@%h", "--loglevel", "WARNING",
                        "--without-gossip", "--without-mingle", "--without-heartbeat")  # fmt: skip
        wait_for(lambda: all(p.check() for p in procs.started) and len(app.control.ping(timeout=0.5)) >= args.workers,
                 60, 0.1, "celery workers")  # fmt: skip
        _chains(conn, 10, 60)  # warm-up
        rates, cpu_ms = [], []
        for _ in range(args.reps):
            meter = cpu.Meter({"workers": [p.popen.pid for p in procs.started], **cpu.shared_groups()})
            with meter:
                rates.append(5 * args.chains / _chains(conn, args.chains, args.timeout))
            cpu_ms.append(meter.total / (5 * args.chains) * 1000)
            print(f"    celery: {rates[-1]:.1f} tasks/s, CPU {cpu_ms[-1]:.2f} ms per task", file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
    import celery as celery_module

    note = f"Celery {celery_module.__version__}, 2 x --pool solo, Redis broker, no result backend"
    args.out.write_text(json.dumps({"steps_per_s": rates, "cpu_ms": cpu_ms, "note": note}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
