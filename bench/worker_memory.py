"""Worker memory: the resident set (VmRSS) of one worker process after N no-op steps, beside three anchors measured
the same way in the same run: a raw RQ worker and a django-rq worker after N no-op jobs, and Django's floor.

    python -m bench.worker_memory [--steps 1000] [--reps 3] [--worker-class SimpleWorker|Worker]
                                  [--settings bench.settings]

- ours: ``manage.py workflows_worker`` on the demo project's settings plus the bench app (``bench.settings``: the
  demo's flows, the agent demo too, and bench's no-op chain), SQLite in a temporary directory, N/5 runs of the
  5-step no-op chain;
- django-rq: ``manage.py rqworker --skip-checks`` on the same settings and the same apps as ours (a plain RQ
  worker inside the same Django project: the fair anchor; ``bench.settings`` gives it our workers' app list, and
  without the checks it loads no URLs, as ours do not), N ``bench.rawrq.noop`` jobs;
- raw RQ: ``rq worker`` (no Django), N ``bench.rawrq.noop`` jobs;
- floor: a process that only ran ``django.setup()`` with the same settings, as a worker process sees them (the
  settings leave some apps out of worker processes), RSS after setup: what any Django process holds before a step.

Each repetition measures the four back to back, in an order rotated every repetition; the table gives the median
and range over the repetitions, and each ratio's median and range taken within repetitions. All on one embedded
Redis, one worker each, same worker class. With ``SimpleWorker`` the measured process is the one that ran the
steps; with the forking ``Worker`` it is the parent (each job ran in a work horse that has exited). "idle" is the
worker registered, before its first step.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .rawrq import QUEUE, done_count
from .services import BASE_DIR, WORKER_CLASSES, Procs, start_redis, stop_redis
from .stats import spread

VARIANTS = ("ours", "django-rq", "raw", "floor")
LABELS = {"ours": "workflows_worker", "django-rq": "django-rq rqworker", "raw": "raw rq worker",
          "floor": "django.setup() floor"}  # fmt: skip
RATIOS = (("ours", "raw"), ("ours", "django-rq"), ("ours", "floor"), ("django-rq", "raw"), ("floor", "raw"))
# the floor process: Django set up as a worker process's settings see it (their app list), then its VmRSS
FLOOR = (
    "import sys; sys.argv = ['manage.py', 'workflows_worker']; import django; django.setup(); "
    "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmRSS:')][0])"
)


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _wait(done: Callable[[], bool], check: Callable[[], object], what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish in {timeout} s")
        time.sleep(0.05)


def _ours(steps: int, worker_class: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """(idle RSS, RSS after ``steps`` steps) of one workflows_worker, in MB. Runs in this process's Django."""
    from workflows.models import RUN_TERMINAL, Run, RunStatus

    from .flows import noop5

    procs = Procs(env=env, log_dir=log_dir)
    try:
        (worker,) = procs.workflows_workers(1, WORKER_CLASSES[worker_class])
        time.sleep(1)  # its start-up is over (registered); nothing has run yet
        idle = rss_mb(worker.popen.pid)
        ids = [noop5.start({"value": i}).pk for i in range(steps // 5)]
        finished = Run.objects.filter(pk__in=ids, status__in=RUN_TERMINAL)
        _wait(lambda: finished.count() == len(ids), worker.check, "the runs")
        bad = Run.objects.filter(pk__in=ids).exclude(status=RunStatus.SUCCEEDED).count()
        if bad:
            raise RuntimeError(f"{bad} runs did not succeed")
        return idle, rss_mb(worker.popen.pid)
    finally:
        procs.stop_all()


def _jobs(worker, name: str, queue: str, steps: int, redis_url: str) -> tuple[float, float]:
    """(idle RSS, RSS after ``steps`` no-op jobs enqueued on ``queue``, as ``bench.rawrq`` enqueues them)."""
    import redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    time.sleep(1)
    idle = rss_mb(worker.popen.pid)
    conn = redis.Redis.from_url(redis_url)
    before = done_count(conn, [name])
    q = Queue(queue, connection=conn, serializer=JSONSerializer)
    for i in range(steps):
        q.enqueue("bench.rawrq.noop", i, job_timeout=-1, result_ttl=0, failure_ttl=86400)
    _wait(lambda: done_count(conn, [name]) - before >= steps, worker.check, f"{steps} jobs on {queue}")
    return idle, rss_mb(worker.popen.pid)


def _raw(steps: int, worker_class: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """(idle RSS, RSS after ``steps`` no-op jobs) of one plain ``rq worker``, in MB."""
    procs = Procs(env=env, log_dir=log_dir)
    try:
        (worker,) = procs.rq_workers(1, WORKER_CLASSES[worker_class], QUEUE)
        return _jobs(worker, worker.name, QUEUE, steps, env["REDIS_URL"])
    finally:
        procs.stop_all()


def _django_rq(steps: int, worker_class: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """(idle RSS, RSS after ``steps`` no-op jobs) of one ``manage.py rqworker`` on the same settings, in MB."""
    import uuid

    procs = Procs(env=env, log_dir=log_dir)
    name = f"djrq-{uuid.uuid4().hex[:8]}"
    try:
        worker = procs.start(name, sys.executable, "manage.py", "rqworker", "--skip-checks", "--worker-class",
                             WORKER_CLASSES[worker_class], "--serializer", "rq.serializers.JSONSerializer",
                             "--name", name, "default")  # fmt: skip
        procs._registered([worker], [name])
        return _jobs(worker, name, "default", steps, env["REDIS_URL"])
    finally:
        procs.stop_all()


def _floor(steps: int, worker_class: str, env: dict[str, str], log_dir: Path) -> tuple[float, float]:
    """RSS of a process that ran ``django.setup()`` only (idle and after are the same figure)."""
    out = subprocess.run([sys.executable, "-c", FLOOR], cwd=BASE_DIR, env=env, check=True, capture_output=True,
                         text=True)  # fmt: skip
    value = float(out.stdout.strip().splitlines()[-1])
    return value, value


MEASURES = {"ours": _ours, "django-rq": _django_rq, "raw": _raw, "floor": _floor}


def measure(steps: int, reps: int, worker_class: str, settings: str) -> dict[str, list[tuple[float, float]]]:
    """{variant: [(idle MB, after MB) per repetition]}, the variants rotated every repetition."""
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="worker-memory-") as tmp:
        work = Path(tmp)
        redis_proc, redis_url = start_redis(work / "redis")
        try:
            env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
                   "DJANGO_SETTINGS_MODULE": settings, "WORKFLOWS_VAR_DIR": str(work), "PYTHONUNBUFFERED": "1",
                   "WORKFLOWS_WORKER_CLASS": WORKER_CLASSES[worker_class]}  # fmt: skip
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
            os.environ.update(env)
            import django

            django.setup()
            for rep in range(reps):
                for i in range(len(VARIANTS)):
                    variant = VARIANTS[(rep + i) % len(VARIANTS)]
                    log_dir = work / "logs" / f"{variant}-{rep}"
                    results[variant].append(MEASURES[variant](steps, worker_class, env, log_dir))
        finally:
            stop_redis(redis_proc)
    return results


def _cell(values: list[float], digits: int = 1) -> str:
    mid, low, high = spread(values)
    return f"{mid:6.{digits}f} ({low:.{digits}f}–{high:.{digits}f})" if len(values) > 1 else f"{mid:6.{digits}f}"


def report(results: dict[str, list[tuple[float, float]]], steps: int, worker_class: str, settings: str) -> str:
    reps = len(results["ours"])
    lines = [f"worker RSS ({worker_class}, {settings}), MB, median (min–max) of {reps}: idle / after {steps} no-op "
             "steps or jobs"]  # fmt: skip
    for variant in VARIANTS:
        idle, after = zip(*results[variant], strict=True)
        lines.append(f"  {LABELS[variant]:<22} {_cell(list(idle))} / {_cell(list(after))}")
    lines.append("ratios (within each repetition; median (min–max)): idle / after")
    for a, b in RATIOS:
        idle = [x[0] / y[0] for x, y in zip(results[a], results[b], strict=True)]
        after = [x[1] / y[1] for x, y in zip(results[a], results[b], strict=True)]
        lines.append(f"  {a + ' / ' + b:<22} {_cell(idle, 2)} / {_cell(after, 2)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--worker-class", choices=sorted(WORKER_CLASSES), default="SimpleWorker")
    parser.add_argument("--settings", default="bench.settings")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results = measure(args.steps, args.reps, args.worker_class, args.settings)
    print(report(results, args.steps, args.worker_class, args.settings))
    load = ", ".join(f"{a:.2f}→{b:.2f}" for a, b in zip(load_before, os.getloadavg(), strict=True))
    print(f"load average (1, 5, 15 min) before→after: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
