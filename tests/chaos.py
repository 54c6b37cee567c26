"""Chaos test: the real system under SIGKILLs and restarts, then a check that nothing was lost or done twice.

    python -m tests.chaos --runs 300            # make chaos
    python -m tests.chaos --runs 30 --kills 3   # the small version CI runs (tests/integration/test_chaos.py)

Starts a throwaway PostgreSQL (``tests.pgcluster``), a Redis (``workflows.redis_server``), 3 forking RQ workers
and the recovery loop; launches the runs of the ``chaos`` workflow (then, parallel, a foreach whose items fail
once on purpose, retries; ``tests/testapp/chaos_flows.py``) over the first seconds; SIGKILLs a random worker
(and its work horse) every 1-3 s (once the replacements of earlier victims are up) and starts a new one;
restarts Redis once (empty) and PostgreSQL once (an immediate shutdown: a crash); waits until every run has
ended; prints a markdown table of what it finds in the database (``tests/invariants.py``). Exits 1 on a lost or
wrong run, a double transition, a journal gap, an attempt executed twice or more re-executions than kills.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.cluster = None
        self.redis = None
        self.workers: list = []
        self.others: list = []
        self.kills = 0
        self.events: list[str] = []
        self.t0 = time.monotonic()

    # ---- services -------------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {message}"
        self.events.append(line)
        print(line, flush=True)

    def start_services(self) -> None:
        from tests import pgcluster
        from workflows.devserver import redis_server

        self.cluster = c = pgcluster.start("chaos")
        # the throwaway cluster runs with synchronous_commit=off, which loses acknowledged commits in a crash:
        # this test crashes PostgreSQL on purpose, so its database needs every commit durable
        psql = [str(c.bindir / "psql"), "-h", "127.0.0.1", "-p", str(c.port), "-U", "postgres", "-d", "chaos"]
        pgcluster._run([*psql, "-c", "ALTER DATABASE chaos SET synchronous_commit = on"])
        self.redis, url = redis_server.start(self.workdir / "redis", appendonly=True)
        os.environ.update(
            DJANGO_SETTINGS_MODULE="tests.settings",
            DATABASE_URL=self.cluster.url,
            REDIS_URL=url,
            WORKFLOWS_LEASE_SECONDS=str(self.args.lease),
            WORKFLOWS_REQUEUE_AFTER_SECONDS=str(self.args.requeue_after),
            WORKFLOWS_LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        os.environ.pop("WORKFLOWS_WORKER_CLASS", None)
        os.environ.pop("WORKFLOWS_CRASH_AT", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, check=True)
        self.say(f"PostgreSQL at {self.cluster.url}, Redis at {url}, logs in {self.workdir}")

    def restart_redis(self) -> None:
        from workflows.devserver import redis_server

        directory = self.workdir / "redis"
        os.killpg(self.redis.pid, signal.SIGKILL)
        self.redis.wait()
        for path in directory.iterdir():  # restarted empty: every queued job and worker registration is gone
            if path.name != "redis.sock":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        time.sleep(self.args.down)
        self.redis, _ = redis_server.start(directory, appendonly=True)
        self.say(f"Redis SIGKILLed, down {self.args.down:g}s, restarted empty")

    def restart_postgresql(self) -> None:
        from tests import pgcluster

        c = self.cluster
        pg_ctl = str(c.bindir / "pg_ctl")
        pgcluster._run([pg_ctl, "-D", str(c.data), "-m", "immediate", "-w", "stop"])  # a crash: no checkpoint
        time.sleep(self.args.down)
        options = f"-p {c.port} -k {c.directory / 'sock'} {pgcluster.SERVER_OPTIONS}"
        log = str(c.directory / "server.log")
        pgcluster._run([pg_ctl, "-D", str(c.data), "-l", log, "-w", "-o", options, "start"])
        self.say(f"PostgreSQL stopped (immediate), down {self.args.down:g}s, restarted")

    # ---- processes ------------------------------------------------------------------------------------
    def spawn(self, name: str, *args: str):
        from tests.integration.conftest import Process

        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=BASE_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return Process(name, popen, log)

    def start_worker(self):
        name = f"worker-{uuid.uuid4().hex[:6]}"
        worker = self.spawn(name, "workflows_worker", "--worker-class", "rq.worker.Worker", "--name", name)
        worker.started = time.monotonic()
        self.workers.append(worker)
        return worker

    def up(self, worker) -> bool:
        """Registered in Redis (or started long enough ago: a Redis restart may have dropped its registration)."""
        from workflows.runtime import dispatch

        if time.monotonic() - worker.started >= 15:
            return True
        try:
            return bool(dispatch.get_connection().exists(f"rq:worker:{worker.name}"))
        except Exception:
            return False

    def kill_a_worker(self) -> bool:
        """SIGKILL a random worker (and its work horse), once every worker is up; start another in its place.

        Waiting for the replacements to be up keeps the 3 workers serving on a slow machine, where a worker
        takes longer to boot than the 1-3 s between kills.
        """
        if not all(self.up(w) for w in self.workers):
            return False
        victim = self.rng.choice(self.workers)
        victim.kill()
        self.workers.remove(victim)
        self.kills += 1
        self.start_worker()
        return True

    def stop_processes(self) -> None:
        for proc in self.workers + self.others:
            proc.kill()

    def stop_services(self) -> None:
        from tests import pgcluster
        from workflows.devserver import redis_server

        if self.redis is not None:
            redis_server.stop(self.redis)
        if self.cluster is not None:
            pgcluster.stop(self.cluster)

    # ---- the run --------------------------------------------------------------------------------------
    def setup_django(self) -> None:
        import logging

        import django

        django.setup()
        root = logging.getLogger()  # this process's own warnings (enqueue or publish failing) go to a file
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(logging.FileHandler(self.workdir / "launcher.log"))

    def launch(self, i: int) -> int:
        from tests.testapp import chaos_flows
        from workflows.runtime import retrying

        data = {"value": i, "pause": self.rng.choice([0.0, 0.02, 0.05, 0.1])}
        key = f"chaos-{self.tag}-{i}"  # a launch retried after an error returns the run it made, if any
        return retrying.retrying(chaos_flows.chaos.start, data, idempotency_key=key).pk

    def open_runs(self, ids: list[int]) -> int | None:
        from django.db import DatabaseError, close_old_connections

        from workflows.models import RUN_TERMINAL, Run

        try:
            return Run.objects.filter(pk__in=ids).exclude(status__in=RUN_TERMINAL).count()
        except DatabaseError:
            close_old_connections()
            return None

    def run(self) -> int:
        args = self.args
        self.tag = uuid.uuid4().hex[:8]
        self.start_services()
        self.setup_django()
        for _ in range(args.workers):
            self.start_worker()
        for i in range(args.recovery):
            self.others.append(self.spawn(f"recovery-{i + 1}", "workflows_recover", "--loop"))
        time.sleep(2)  # let them start: the launch begins with every process up
        self.say(f"{args.workers} forking workers, {args.recovery} recovery loop(s); launching {args.runs} runs")

        launch_time = args.runs / args.rate
        redis_at, pg_at = 0.35 * max(launch_time, 4.0), 0.7 * max(launch_time, 4.0)
        start = time.monotonic()
        next_kill = start + self.rng.uniform(1, 3)
        ids: list[int] = []
        drained_at = None
        redis_done = pg_done = False
        deadline = start + args.timeout
        last_check = last_progress = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            while len(ids) < args.runs and len(ids) < (now - start) * args.rate:
                ids.append(self.launch(len(ids)))
            if not redis_done and now - start >= redis_at:
                self.restart_redis()
                redis_done = True
            if not pg_done and now - start >= pg_at:
                self.restart_postgresql()
                pg_done = True
            if now >= next_kill and (args.kills is None or self.kills < args.kills) and self.kill_a_worker():
                next_kill = time.monotonic() + self.rng.uniform(1, 3)
            if len(ids) == args.runs and redis_done and pg_done and now - last_check >= 0.5:
                last_check = now
                left = self.open_runs(ids)
                if left == 0:
                    drained_at = time.monotonic()
                    break
                if left is not None and now - last_progress >= 15:
                    last_progress = now
                    self.say(f"{left} of {len(ids)} runs still open; {self.kills} worker kills so far")
            time.sleep(0.02)
        launched_at = start + launch_time
        self.say(f"{'drained' if drained_at else 'TIMED OUT'}; {self.kills} worker kills")
        self.stop_processes()
        return self.report(ids, start, launched_at, drained_at)

    def report(self, ids: list[int], start: float, launched_at: float, drained_at: float | None) -> int:
        from tests import invariants
        from tests.testapp import chaos_flows
        from workflows.models import RUN_TERMINAL, Run, StepRun

        runs = list(Run.objects.filter(pk__in=ids).values_list("pk", "status", "input", "output"))
        terminal = [r for r in runs if r[1] in RUN_TERMINAL]
        correct = [r for r in runs if r[1] == "succeeded" and r[3] == chaos_flows.expected_chaos(r[2]["value"])]
        checked = invariants.check(ids)
        lost_workers = StepRun.objects.filter(run_id__in=ids, error__type="WorkerLost").count()
        expected_planned = sum(chaos_flows.planned_failures_chaos(r[2]["value"]) for r in runs)
        extra = checked.extra_executions
        rows = [
            ("runs launched", len(ids), f"= {self.args.runs}", len(ids) == self.args.runs),
            ("runs terminal", len(terminal), f"= {len(ids)}", len(terminal) == len(ids)),
            ("runs with correct output", len(correct), f"= {len(ids)}", len(correct) == len(ids)),
            ("transitions applied twice", len(checked.doubles), "= 0", not checked.doubles),
            ("journal gaps", len(checked.gaps), "= 0", not checked.gaps),
            ("step attempts executed twice", len(checked.same_attempt_twice), "= 0", not checked.same_attempt_twice),
            ("step executions beyond one per step", extra, f"<= {self.kills} (kills)", 0 <= extra <= self.kills),
            ("step executions (all)", checked.executions, "", True),
            ("planned failures (retried)", checked.planned_failures, f"<= {expected_planned} (fewer if killed first)",
             checked.planned_failures <= expected_planned),
            ("attempts lost with a worker (WorkerLost)", lost_workers, "", True),
            ("worker kills (SIGKILL)", self.kills, "", True),
            ("Redis restarts (empty)", 1, "", True),
            ("PostgreSQL restarts (immediate)", 1, "", True),
            ("time to launch", f"{launched_at - start:.1f} s", "", True),
            ("time to drain (from first launch)", f"{drained_at - start:.1f} s" if drained_at else "timed out", "",
             drained_at is not None),
            ("drain after the last launch", f"{drained_at - launched_at:.1f} s" if drained_at else "-", "", True),
        ]  # fmt: skip
        ok = all(row[3] for row in rows)
        print()
        print("| chaos | value | must be |")
        print("| --- | ---: | --- |")
        for name, value, must, passed in rows:
            print(f"| {name} | {value} | {must}{'' if passed else ' **FAILED**'} |")
        print()
        for problem in checked.problems():
            print(f"problem: {problem}")
        bad = [r[0] for r in runs if r not in correct][:10]
        if bad:
            print(f"runs not right (first 10): {bad}")
        print(f"chaos: {'PASSED' if ok else 'FAILED'}", flush=True)
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="runs launched per second (default 10)")
    parser.add_argument("--kills", type=int, default=None, help="stop killing after this many (default: no limit)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--recovery", type=int, default=1, help="recovery loops (default 1)")
    parser.add_argument("--lease", type=float, default=5.0, help="LEASE_SECONDS (default 5)")
    parser.add_argument("--requeue-after", type=float, default=2.0, help="REQUEUE_AFTER_SECONDS (default 2)")
    parser.add_argument("--down", type=float, default=1.0, help="seconds Redis and PostgreSQL stay down")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the logs directory even when it passes")
    args = parser.parse_args(argv)

    chaos = Chaos(args)
    code = 1
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = chaos.run()
    except KeyboardInterrupt:
        code = 130
    finally:
        chaos.stop_processes()
        chaos.stop_services()
        if code == 0 and not args.keep:
            shutil.rmtree(chaos.workdir, ignore_errors=True)
        else:
            print(f"chaos: logs kept in {chaos.workdir}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
