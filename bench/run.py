"""``python -m bench`` (``make bench``): every benchmark, on SQLite and PostgreSQL, in one table.

    .venv/bin/python -m bench [--db sqlite,postgresql] [--reps 3] [--size full|tiny]
                              [--only compare,peers,push,throughput,scale,pages,admission,profile] [--no-install]
                              [--no-docs]

By default (compare, peers, push) it prints the one table of ``bench.table``: every ratio measured side by
side in one run, repetitions interleaved, CPU time per step beside wall time (``bench.compare``). The older
scenarios (throughput, scale, pages, admission, profile) print their table below it when asked for.

Starts an embedded Redis (``workflows.redis_server``) and, for PostgreSQL, a throwaway cluster
(``tests.pgcluster``, durable: fsync, synchronous_commit and full_page_writes on, unlike the test suite's).
Each scenario runs in a process of its own on a fresh copy of a migrated database, starts its own worker
processes, and writes its figures as JSON; this process gathers them, prints one markdown table (median and
min–max of the repetitions, beside the targets) and saves it, the raw figures, a PNG chart and the profile under
``bench/results/``; with the full size it also rewrites the table in the README (between its bench-table markers).

What a benchmark needs and the project does not (matplotlib, pyinstrument here; Celery and DBOS in a
virtualenv of their own) is installed on first use, and printed. What cannot run here says n/a and why.
Nothing asserts a time: a slow figure is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from . import deps, push, report, table
from .services import BASE_DIR, start_postgres, start_redis, stop_postgres, stop_redis

RESULTS = BASE_DIR / "bench" / "results"
DOCS = BASE_DIR / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
SCENARIOS = ["compare", "throughput", "scale", "pages", "admission", "push", "peers", "profile"]
DEFAULT = ["compare", "peers", "push"]  # the table of bench.table; the others add the older table below it

SIZES = {
    "full": {
        "compare": {
            "runs": 70,  # 350 steps a measure; the workers' RSS is read after 5 x (5 + 3 x 70) = 1,075 steps
            "handoff_runs": 10,
            "worker_classes": ["SimpleWorker", "Worker"],
            "db_seconds": 3,
            "io_items": 1000,
            "io_chains": 2,
            "io_workers": 4,
        },
        "throughput": {"runs": 200, "handoff_runs": 20, "worker_classes": ["SimpleWorker", "Worker"]},
        "scale": {"chain_runs": 5, "foreach_items": 1000, "storage_sizes": [10, 100, 1000]},
        "pages": {"runs": 100_000, "requests": 10, "big_items": 1000},
        "admission": {"keys": 1000, "passes": 20},
        "push": {"events": 1000, "rate": 200, "warmup": 50},
        "peers": {"runs": 70},
        "profile": {"runs": 40},
    },
    "quick": {},  # the full size with smaller measures (below): a look in a few minutes, README left alone
    "tiny": {
        "compare": {
            "runs": 6,
            "handoff_runs": 2,
            "worker_classes": ["SimpleWorker"],
            "db_seconds": 0.5,
            "io_items": 8,
            "io_chains": 1,
            "io_workers": 2,
        },
        "throughput": {"runs": 6, "handoff_runs": 2, "worker_classes": ["SimpleWorker"]},
        "scale": {"chain_runs": 1, "foreach_items": 20, "storage_sizes": [2, 4, 8]},
        "pages": {"runs": 300, "requests": 2, "big_items": 20},
        "admission": {"keys": 20, "passes": 3},
        "push": {"events": 20, "rate": 0, "warmup": 5},
        "peers": {"runs": 5},
        "profile": {"runs": 3},
    },
}


SIZES["quick"] = {
    **SIZES["full"],
    "compare": {**SIZES["full"]["compare"], "runs": 30, "handoff_runs": 5, "db_seconds": 2, "io_items": 200,
                "io_chains": 1},
    "peers": {"runs": 30},
    "push": {"events": 200, "rate": 200, "warmup": 20},
}  # fmt: skip


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


class Databases:
    """Fresh databases of one kind, copied from a migrated template."""

    def __init__(self, kind: str, work: Path, server_url: str | None, env: dict[str, str]) -> None:
        self.kind, self.work, self.server_url, self.env = kind, work / kind, server_url, env
        self.work.mkdir(parents=True, exist_ok=True)
        if kind == "postgresql":
            self._sql("CREATE DATABASE bench_template")
            self.template = self._url("template")
        else:
            self.template = f"sqlite:///{self.work / 'template.sqlite3'}"
        started = time.monotonic()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, check=True,
                       env={**env, "DATABASE_URL": self.template})  # fmt: skip
        say(f"{kind}: migrated the template database in {time.monotonic() - started:.1f}s")

    def _url(self, name: str) -> str:
        return self.server_url.rsplit("/", 1)[0] + f"/bench_{name}"

    def _sql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.server_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            conn.execute(sql)

    def fresh(self, name: str, migrated: bool = True) -> str:
        if self.kind == "postgresql":
            self._sql(f"CREATE DATABASE bench_{name}" + (" TEMPLATE bench_template" if migrated else ""))
            return self._url(name)
        path = self.work / f"{name}.sqlite3"
        if migrated:
            shutil.copyfile(self.work / "template.sqlite3", path)
        return f"sqlite:///{path}"


def _run(cmd: list[str], env: dict, timeout: float) -> tuple[int | None, list[str]]:
    """Run ``cmd``, echoing its stderr as it comes; (exit code or None on timeout, its last stderr lines)."""
    proc = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stderr=subprocess.PIPE, text=True)
    tail: collections.deque[str] = collections.deque(maxlen=20)

    def echo() -> None:
        for line in proc.stderr:
            sys.stderr.write(line)
            sys.stderr.flush()
            if line.strip():
                tail.append(line.rstrip())

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # KeyboardInterrupt: its finally blocks stop the processes it started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        code = None
    reader.join(5)
    return code, list(tail)


def run_scenario(name: str, url: str, env: dict, params: dict, work: Path, timeout: float) -> dict:
    """Run ``python -m bench.scenario name`` against ``url``; its figures, or {"error": why}."""
    out = work / f"{name}-{abs(hash(url)) % 10**6}.json"
    cmd = [sys.executable, "-m", "bench.scenario", name, "--out", str(out), "--params", json.dumps(params),
           "--log-dir", str(work / "logs" / f"{name}-{out.stem}")]  # fmt: skip
    load = os.getloadavg()[0]
    code, tail = _run(cmd, {**env, "DATABASE_URL": url}, timeout)
    if code is None:
        return {"error": f"did not finish within {timeout:g}s"}
    if code or not out.exists():
        return {"error": f"failed ({code}): {tail[-1] if tail else '?'}"}
    result = json.loads(out.read_text())
    result["load_before"], result["load_after"] = round(load, 2), round(os.getloadavg()[0], 2)
    return result


def run_peer(python: str, module: str, args: list[str], env: dict, work: Path, timeout: float) -> dict:
    out = work / f"{module}-{time.monotonic_ns()}.json"
    cmd = [python, "-m", f"bench.peers.{module}", "--out", str(out), "--log-dir", str(work / "logs" / module), *args]
    code, tail = _run(cmd, env, timeout)
    if code is None:
        return {"error": f"{module} did not finish within {timeout:g}s"}
    if code or not out.exists():
        return {"error": f"{module} failed: {tail[-1] if tail else code}"}
    return json.loads(out.read_text())


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--reps", type=int, default=None, help="repetitions of each measure (default 3; tiny: 1)")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", default=",".join(DEFAULT), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--no-install", action="store_true", help="install nothing: what needs it says n/a")
    parser.add_argument("--no-docs", action="store_true", help="leave the README's table alone")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to save (default bench/results/)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for one scenario")
    args = parser.parse_args(argv)
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = (set(dbs) - set(report.DBS)) | (only - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    reps = args.reps or (1 if args.size == "tiny" else 3)
    size = SIZES[args.size]
    began = time.monotonic()
    say(f"{args.size} size, {reps} repetition(s), {', '.join(dbs)}; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    missing: dict[str, str] = {}
    peers_python, peers_reason = None, "--no-install"
    if not args.no_install:
        wanted = {"matplotlib": "matplotlib"} | ({"pyinstrument": "pyinstrument"} if "profile" in only else {})
        missing = deps.ensure_local(wanted)
        if "peers" in only:
            peers_python, peers_reason = deps.peers_python()
    elif "peers" in only and deps.PEERS_VENV.exists():
        peers_python, peers_reason = deps.peers_python()

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_proc, redis_url = start_redis(work / "redis")
    cluster = None
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "REDIS_URL": redis_url,
        "BENCH_REDIS_PID": str(redis_proc.pid),  # bench.cpu: Redis's CPU is part of every measure's
        "WORKFLOWS_LOG_LEVEL": "WARNING", "WORKFLOWS_VAR_DIR": str(work / "var"), "SECRET_KEY": "bench-not-secret",
        "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    env.pop("WORKFLOWS_WORKER_CLASS", None)
    results: dict = {"dbs": dbs, "db": {db: {} for db in dbs}, "peers": {},
                     "params": {"reps": reps, "size": args.size, **size["throughput"]}}  # fmt: skip
    try:
        servers: dict[str, Databases] = {}
        for db in dbs:
            try:
                if db == "postgresql":
                    cluster, server_url = start_postgres()
                    say(f"postgresql: throwaway cluster at {server_url}")
                    env["BENCH_PG_PID"] = (cluster.data / "postmaster.pid").read_text().split()[0]
                else:
                    server_url = None
                servers[db] = Databases(db, work, server_url, env)
            except Exception as exc:
                traceback.print_exc()
                results["db"][db] = {name: {"error": f"no {db}: {exc}"} for name in SCENARIOS}
        for db, databases in servers.items():
            db_env = env if db == "postgresql" else {k: v for k, v in env.items() if k != "BENCH_PG_PID"}
            for name in ("compare", "throughput", "scale", "pages", "admission"):
                if name not in only:
                    continue
                say(f"{db}: {name}")
                flush_redis(redis_url)
                params = {**size[name], "reps": reps}
                results["db"][db][name] = part = run_scenario(name, databases.fresh(name), db_env, params, work,
                                                              args.timeout)  # fmt: skip
                say(f"{db}: {name} " + (f"failed: {part['error']}" if "error" in part else f"{part['seconds']}s"))
            if "peers" in only:
                say(f"{db}: DBOS")
                if peers_python:
                    dbos_env = {**db_env, "DBOS_DATABASE_URL": databases.fresh("dbos", migrated=False)}
                    peer_args = ["--runs", str(size["peers"]["runs"]), "--reps", str(reps)]
                    results["db"][db]["dbos"] = run_peer(peers_python, "dbos_app", peer_args, dbos_env, work, 600)
                else:
                    results["db"][db]["dbos"] = {"error": peers_reason}
            if "profile" in only:
                if "pyinstrument" in missing or (args.no_install and not _importable("pyinstrument")):
                    results["db"][db]["profile"] = {"error": missing.get("pyinstrument", "pyinstrument missing")}
                else:
                    say(f"{db}: profile")
                    flush_redis(redis_url)
                    params = {**size["profile"], "out_text": str(args.results / f"profile-{db}.txt")}
                    args.results.mkdir(parents=True, exist_ok=True)
                    results["db"][db]["profile"] = run_scenario("profile", databases.fresh("profile"), env, params,
                                                                work, args.timeout)  # fmt: skip
        if "peers" in only:
            say("Celery")
            flush_redis(redis_url)
            if peers_python:
                peer_args = ["--chains", str(size["peers"]["runs"]), "--reps", str(reps)]
                celery_env = {k: v for k, v in env.items() if k not in ("DJANGO_SETTINGS_MODULE", "BENCH_PG_PID")}
                results["peers"]["celery"] = run_peer(peers_python, "celery_app", peer_args, celery_env, work, 600)
            else:
                results["peers"]["celery"] = {"error": peers_reason}
        if "push" in only:
            say("push latency (bench/push_latency.py)")
            flush_redis(redis_url)
            p = size["push"]
            results["push"] = push.run(p["events"], p["rate"], p["warmup"], reps, {"REDIS_URL": redis_url})
            flush_redis(redis_url)
            results["push_held"] = push.run(
                p["events"], p["rate"], p["warmup"], reps, {"REDIS_URL": redis_url}, held=True
            )
    finally:
        try:
            if cluster is not None:
                stop_postgres(cluster)
        finally:
            stop_redis(redis_proc)
            shutil.rmtree(work, ignore_errors=True)

    seconds = time.monotonic() - began
    results["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["seconds"] = round(seconds)
    results["machine"] = _machine()
    old = only - set(DEFAULT)
    text = f"{table.markdown(results)}\n\n{table.notes(results)}\n"
    if old:
        text += f"\nOther figures (--only {','.join(sorted(old))}):\n\n{report.markdown(results)}\n\n"
        text += f"{_notes(results, missing)}\n"
    print("\n" + text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "latest.md").write_text(text)
    (args.results / "latest.json").write_text(json.dumps(results, indent=1))
    why = report.chart(results, args.results / "bench.png") if old else "no chart: it draws the older scenarios"
    say(f"saved {args.results / 'latest.md'} and latest.json; {why or 'and bench.png'}")
    if args.size == "full" and not old and not args.no_docs and DOCS.exists():
        body = DOCS.read_text()
        if START in body and END in body:
            head, rest = body.split(START, 1)
            DOCS.write_text(f"{head}{START}\n{text}{END}{rest.split(END, 1)[1]}")
            say(f"updated the table in {DOCS.relative_to(BASE_DIR)}")
    say(f"done in {seconds / 60:.1f} min")
    return 0


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _machine() -> str:
    from importlib.metadata import version

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"Django {version('django')}, RQ {version('rq')}")  # fmt: skip


def _notes(results: dict, missing: dict[str, str]) -> str:
    loads = [
        f"{db} {name} {part['load_before']}→{part['load_after']}"
        for db, parts in results["db"].items() for name, part in parts.items()
        if isinstance(part, dict) and "load_before" in part
    ]  # fmt: skip
    lines = [
        f"Median (min–max) of {results['params']['reps']} repetition(s); {results['machine']}; "
        f"{results['finished']}, {results['seconds'] / 60:.1f} min in all.",
        "Load average (1 min) around each scenario: " + ", ".join(loads) + "." if loads else "",
        "PostgreSQL: a throwaway local cluster, durable (fsync, synchronous_commit, full_page_writes on); "
        "SQLite: WAL, synchronous=NORMAL. Redis: embedded, on a unix socket. Handoff: from a step's body returning "
        "to the next body starting (both stamped by the steps); the StepRun timestamps leave out both ends. "
        "Pages: in-process django.test.Client as a superuser.",
    ]
    for db, parts in results["db"].items():
        prof = parts.get("profile") or {}
        if "queries_per_step" in prof:
            lines.append(f"Profile ({report.DBS[db]}): {prof['queries_per_step']} queries per step (a 5-step run: "
                         f"{prof['query_kinds']}), {prof['start_queries']} per start(); "
                         f"profile-{db}.txt beside this table.")  # fmt: skip
    for module, reason in missing.items():
        lines.append(f"{module}: {reason}")
    return "\n".join(line for line in lines if line)
