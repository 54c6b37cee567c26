"""Worker memory: the resident set (VmRSS) of one worker process after N no-op steps, beside a raw RQ worker's after N
no-op jobs, measured the same way on both sides.

    python -m bench.worker_memory [--steps 1000] [--worker-class SimpleWorker|Worker] [--settings bench.settings]

Ours: ``manage.py workflows_worker`` on the demo project's settings plus the bench app (``bench.settings``: the
demo's flows, agents included, and bench's no-op chain), SQLite in a temporary directory, N/5 runs of the
5-step no-op chain. Raw RQ: ``rq worker`` (no Django) running N ``bench.rawrq.noop`` jobs. Both on one embedded
Redis, one worker each, same worker class. With ``SimpleWorker`` the measured process is the one that ran the
steps; with the forking ``Worker`` it is the parent (each job ran in a work horse that has exited). Also prints
the worker's idle RSS (registered, before the first step) and the number of modules it imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .rawrq import QUEUE, measure
from .services import BASE_DIR, WORKER_CLASSES, Procs, start_redis, stop_redis


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _ours(steps: int, worker_class: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """(idle RSS, RSS after ``steps`` steps) of one workflows_worker, in MB. Runs in this process's Django."""
    import django

    django.setup()
    from workflows.models import RUN_TERMINAL, Run, RunStatus

    from .flows import noop5

    procs = Procs(env=env, log_dir=log_dir / "ours")
    try:
        (worker,) = procs.workflows_workers(1, WORKER_CLASSES[worker_class])
        time.sleep(1)  # its start-up is over (registered); nothing has run yet
        idle = rss_mb(worker.popen.pid)
        ids = [noop5.start({"value": i}).pk for i in range(steps // 5)]
        deadline = time.monotonic() + 600
        while Run.objects.filter(pk__in=ids, status__in=RUN_TERMINAL).count() < len(ids):
            worker.check()
            if time.monotonic() > deadline:
                raise TimeoutError("the runs did not finish in 600 s")
            time.sleep(0.1)
        bad = Run.objects.filter(pk__in=ids).exclude(status=RunStatus.SUCCEEDED).count()
        if bad:
            raise RuntimeError(f"{bad} runs did not succeed")
        return idle, rss_mb(worker.popen.pid)
    finally:
        procs.stop_all()


def _raw(steps: int, worker_class: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """(idle RSS, RSS after ``steps`` no-op jobs) of one plain ``rq worker``, in MB."""
    import redis

    procs = Procs(env=env, log_dir=log_dir / "raw")
    try:
        (worker,) = procs.rq_workers(1, WORKER_CLASSES[worker_class], QUEUE)
        time.sleep(1)
        idle = rss_mb(worker.popen.pid)
        measure(redis.Redis.from_url(env["REDIS_URL"]), [worker.name], steps)
        return idle, rss_mb(worker.popen.pid)
    finally:
        procs.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--worker-class", choices=sorted(WORKER_CLASSES), default="SimpleWorker")
    parser.add_argument("--settings", default="bench.settings")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="worker-memory-") as tmp:
        work = Path(tmp)
        redis_proc, redis_url = start_redis(work / "redis")
        try:
            env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
                   "DJANGO_SETTINGS_MODULE": args.settings, "WORKFLOWS_VAR_DIR": str(work), "PYTHONUNBUFFERED": "1",
                   "WORKFLOWS_WORKER_CLASS": WORKER_CLASSES[args.worker_class]}  # fmt: skip
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
            os.environ.update(env)
            raw = _raw(args.steps, args.worker_class, env, work / "logs")
            ours = _ours(args.steps, args.worker_class, env, work / "logs")
        finally:
            stop_redis(redis_proc)
    print(f"worker RSS ({args.worker_class}, {args.settings}), MB: idle / after {args.steps} no-op steps")
    print(f"  workflows_worker  {ours[0]:6.1f} / {ours[1]:6.1f}")
    print(f"  raw rq worker     {raw[0]:6.1f} / {raw[1]:6.1f}")
    print(f"  ratio             {ours[0] / raw[0]:6.2f} / {ours[1] / raw[1]:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
