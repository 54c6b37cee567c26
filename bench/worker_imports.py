"""Worker start-up audit: what a ``manage.py workflows_worker`` imports before its first step, by the resident memory
and time each import adds.

    python -m bench.worker_imports [--settings bench.settings] [--top 25] [--steps N] [--importtime FILE]

The worker runs as deployed (embedded Redis, SQLite in a temporary directory) with a hook on the interpreter's
module loader (``_load_unlocked``, the function ``import`` calls to execute a module) that reads VmRSS and the
clock around each module's execution. A module's *own* RSS and time are its inclusive figures less those of the
modules it imported while executing (what ``python -X importtime`` calls self time); they are summed per
top-level package. Once the worker has registered in Redis (and, with ``--steps N``, has run N/5 runs of bench's
5-step no-op chain: what the first steps import), the hook writes its table and the worker is killed.
``--importtime FILE`` also runs the same start-up under ``python -X importtime`` and writes its raw report there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .services import BASE_DIR, SIMPLE, Procs, start_redis, stop_redis, wait_for

# Runs in the worker: installs the hook, then runs manage.py. A thread writes the table when TRIGGER appears.
BOOT = r"""
import json, os, runpy, sys, threading, time
import _frozen_importlib as bootstrap

PAGE = os.sysconf("SC_PAGE_SIZE")
stats, stack = {}, []


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


load = bootstrap._load_unlocked


def measured(spec):
    stack.append([0, 0.0])  # what the modules this one imports add (their inclusive figures)
    r0, t0 = rss(), time.perf_counter()
    try:
        return load(spec)
    finally:
        r, t = rss() - r0, time.perf_counter() - t0
        kids = stack.pop()
        stats[spec.name] = (r - kids[0], t - kids[1])
        if stack:
            stack[-1][0] += r
            stack[-1][1] += t


bootstrap._load_unlocked = measured
trigger, out = os.environ.pop("AUDIT_TRIGGER"), os.environ.pop("AUDIT_OUT")


def dump():
    for n in range(2):  # at registration, then (with --steps) after the steps
        while not os.path.exists(f"{trigger}.{n}"):
            time.sleep(0.05)
        data = {"rss": rss(), "modules": stats.copy()}
        with open(f"{out}.tmp", "w") as f:
            json.dump(data, f)
        os.rename(f"{out}.tmp", f"{out}.{n}")


threading.Thread(target=dump, daemon=True).start()
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def _worker_env(work: Path, settings: str, redis_url: str) -> dict[str, str]:
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": settings, "WORKFLOWS_VAR_DIR": str(work), "PYTHONUNBUFFERED": "1"}  # fmt: skip


def _run_steps(steps: int, env: dict[str, str], proc) -> None:
    """N/5 runs of ``bench.flows.noop5``, started from this process (its Django on the worker's settings)."""
    os.environ.update(env)
    import django

    django.setup()
    from workflows.models import RUN_TERMINAL, Run

    from .flows import noop5

    ids = [noop5.start({"value": i}).pk for i in range(steps // 5)]
    wait_for(lambda: proc.check() and Run.objects.filter(pk__in=ids, status__in=RUN_TERMINAL).count() == len(ids),
             600, what="the runs")  # fmt: skip


def _dump(proc, trigger: Path, out: Path, n: int) -> dict:
    Path(f"{trigger}.{n}").touch()
    wait_for(lambda: proc.check() and Path(f"{out}.{n}").exists(), 60, what="the audit's table")
    return json.loads(Path(f"{out}.{n}").read_text())


def audit(settings: str, importtime: Path | None = None, steps: int = 0) -> dict:
    """{"rss": bytes at registration, "modules": {name: (own RSS bytes, own seconds)}} of one worker's start-up;
    with ``steps``: "rss" after them, "start_rss" at registration, "modules" those the steps imported."""
    with tempfile.TemporaryDirectory(prefix="worker-imports-") as tmp:
        work = Path(tmp)
        redis_proc, redis_url = start_redis(work / "redis")
        try:
            env = _worker_env(work, settings, redis_url)
            subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True)
            procs = Procs(env=env, log_dir=work / "logs")
            name = f"audit-{uuid.uuid4().hex[:8]}"
            args = ("workflows_worker", "--worker-class", SIMPLE, "--name", name)
            trigger, out = work / "trigger", work / "audit.json"
            try:
                env_audit = {"AUDIT_TRIGGER": str(trigger), "AUDIT_OUT": str(out)}
                proc = procs.start("audit", sys.executable, "-c", BOOT, *args, env=env_audit)
                procs._registered([proc], [name])
                data = _dump(proc, trigger, out, 0)
                if steps:
                    _run_steps(steps, env, proc)
                    after = _dump(proc, trigger, out, 1)
                    new = {k: v for k, v in after["modules"].items() if k not in data["modules"]}
                    data = {"rss": after["rss"], "modules": new, "start_rss": data["rss"]}
                if importtime is not None:
                    raw = procs.start("importtime", sys.executable, "-X", "importtime", "manage.py", *args[:-1],
                                      f"{name}-x")  # fmt: skip
                    procs._registered([raw], [f"{name}-x"])
                    raw.kill()
                    importtime.write_text(raw.output())
            finally:
                procs.stop_all()
        finally:
            stop_redis(redis_proc)
    return data


def by_package(modules: dict[str, list[float]]) -> list[tuple[str, float, float, int]]:
    """(top-level package, own RSS MB, own ms, modules) summed per package, largest RSS first."""
    totals: dict[str, list[float]] = {}
    for name, (rss, seconds) in modules.items():
        row = totals.setdefault(name.split(".")[0], [0.0, 0.0, 0])
        row[0] += rss / 2**20
        row[1] += seconds * 1000
        row[2] += 1
    return sorted(((k, *v) for k, v in totals.items()), key=lambda r: -r[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="bench.settings")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--steps", type=int, default=0, help="measure after this many no-op steps")
    parser.add_argument("--importtime", type=Path, help="also write `python -X importtime`'s report here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data = audit(args.settings, args.importtime, args.steps)
    rows = by_package(data["modules"])
    took = time.monotonic() - started
    count, mb = len(data["modules"]), data["rss"] / 2**20
    if args.steps:
        start = data["start_rss"] / 2**20
        print(f"worker ({args.settings}): {start:.1f} MB RSS at registration, {mb:.1f} MB after {args.steps} "
              f"no-op steps; the {count} modules the steps imported, own RSS and time by top-level package "
              f"(audit: {took:.0f} s)")  # fmt: skip
    else:
        print(f"worker start-up ({args.settings}): {mb:.1f} MB RSS at registration, {count} modules; own RSS and "
              f"time by top-level package (audit: {took:.0f} s)")  # fmt: skip
    print(f"  {'package':<28} {'MB':>6} {'ms':>7} {'modules':>8}")
    for package, mb, ms, count in rows[: args.top]:
        print(f"  {package:<28} {mb:6.1f} {ms:7.0f} {count:8d}")
    rest = rows[args.top :]
    print(f"  {'(the other ' + str(len(rest)) + ')':<28} {sum(r[1] for r in rest):6.1f} {sum(r[2] for r in rest):7.0f}"
          f" {sum(r[3] for r in rest):8d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
