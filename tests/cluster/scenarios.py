"""The multi-host scenarios, run inside the ``ctl`` namespace by ``python -m tests.cluster`` (which makes the
namespaces, runs this with ``ip netns exec``, and deletes them whatever happens).

Each scenario returns its figures and the names of the checks that failed; ``main`` prints a table per scenario
and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workflows.devserver.processes import wait_until

from . import harness
from .harness import Api
from .netns import Network, kill_all
from .services import BASE_DIR, DBNAME, HTTP_PORT, REDIS_URL, Database, Host, Redis


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.net = Network(tag=args.tag)
        self.workdir = Path(args.workdir)
        self.db = Database(self.net, self.workdir / "pg")
        self.redis = Redis(self.net, self.workdir / "redis")
        self.a = Host(self.net, "a", self.workdir, ["default", "host_a"])
        self.b = Host(self.net, "b", self.workdir, ["default"])
        self.api: Api | None = None

    def say(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    # ---- set up --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.db.create_primary()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, check=True)
        self.db.sql("db", DBNAME, harness.TABLE)
        self.db.create_replica()
        self.say("PostgreSQL primary on host db, synchronous streaming replica on host replica")
        self.redis.start()
        import redis

        wait_until(lambda: _pings(redis.Redis.from_url(REDIS_URL)), 30, 0.1, "Redis")
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from workflows.store import tokens

        user = get_user_model().objects.create_superuser("cluster", password="cluster-pw-123")
        self.api = Api(tokens.create(user, "cluster test")[1])
        for host in (self.a, self.b):
            host.start()
        for host in (self.a, self.b):
            self.api.ready(host)
        self.say("hosts a and b up: daphne, 2 workers, a recovery loop each")

    def stop(self) -> None:
        for host in (self.a, self.b):
            kill_all(self.net.ns(host.name))
        self.redis.kill()
        self.db.stop()

    def launch(self, host: Host, workflow: str, count: int, pause: float, tag: str) -> list[int]:
        return [self.api.start(host, workflow, i, pause, f"{tag}-{i}") for i in range(count)]

    # ---- 1. runs started through host A run on both hosts, within the pool's limit ---------------------------
    def pool(self) -> dict[str, Any]:
        from .flows import expected

        ids = self.launch(self.a, "cluster-pool", self.args.runs, 0.3, "pool")
        harness.wait_ended(ids, self.args.timeout)
        rows = harness.executions(ids)
        figures = harness.check(ids, rows, expected)
        by_host = {h: sum(r.host == h for r in rows) for h in ("a", "b")}
        figures["executions on a / b"] = f"{by_host['a']} / {by_host['b']}"
        figures["most steps at once (pool max 3)"] = overlap = harness.max_overlap(rows)
        # sizing: what one app host (daphne, 2 workers, a recovery loop) holds after the runs
        rss = self.a.rss_mb()
        figures["host a RSS, MB: daphne / workers / recovery"] = (
            f"{rss.get('daphne')} / {rss.get('worker1')}, {rss.get('worker2')} / {rss.get('recovery')}"
        )
        conns = harness.query(
            "SELECT host(client_addr), count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND client_addr IS NOT NULL GROUP BY 1 ORDER BY 1"
        )
        figures["PostgreSQL connections by host"] = ", ".join(f"{addr}: {n}" for addr, n in conns)
        figures["failed"] = _failed(figures) + [
            n for n, ok in (("both hosts executed", all(by_host.values())), ("pool limit held", overlap <= 3)) if not ok
        ]
        return figures

    # ---- 2. a websocket client on host B sees a run executed on host A -------------------------------------
    def live(self) -> dict[str, Any]:
        from websockets.sync.client import connect

        from workflows.models import Run

        from .flows import expected

        url = f"ws://{self.b.url.split('//')[1]}/ws/"
        headers = {"Authorization": f"Bearer {self.api.token}"}
        with connect(url, additional_headers=headers, proxy=None, open_timeout=30, max_queue=None) as ws:
            run_id = self.api.start(self.a, "cluster-on-a", 1, 0.3, "live")
            ws.send(json.dumps({"op": "subscribe", "topic": f"run:{run_id}", "since": 0, "id": "s"}))
            frames, received, replayed_to = [], 0, None
            deadline = time.monotonic() + self.args.timeout
            while not frames or frames[-1].get("kind") != "run_succeeded":
                frame = json.loads(ws.recv(max(deadline - time.monotonic(), 0.1)))
                received += 1
                ws.send(json.dumps({"op": "ack", "n": received}))
                if frame["op"] == "subscribed":
                    replayed_to = frame["last_seq"]
                elif frame["op"] == "event":
                    frames.append(frame)
        harness.wait_ended([run_id], self.args.timeout)
        rows = harness.executions([run_id])
        figures = harness.check([run_id], rows, expected)
        last_seq = Run.objects.get(pk=run_id).last_seq
        seqs = [f["seq"] for f in frames]
        figures["events in the journal"] = last_seq
        figures["events seen on b"] = len(seqs)
        figures["of which live (after the subscription's replay)"] = live = sum(s > (replayed_to or 0) for s in seqs)
        figures["executions on a / b"] = f"{sum(r.host == 'a' for r in rows)} / {sum(r.host == 'b' for r in rows)}"
        figures["failed"] = _failed(figures) + [
            n
            for n, ok in (
                ("every event once, in order", seqs == list(range(1, last_seq + 1))),
                ("events came live across hosts", live > 0),
                ("executed on host a", rows and all(r.host == "a" for r in rows)),
            )
            if not ok
        ]
        return figures

    # ---- 3. host A is cut off, then killed: B takes its steps over; A rejoins ------------------------------
    def cut(self) -> dict[str, Any]:
        from .flows import expected

        count = max(4, self.args.runs // 3)
        ids = self.launch(self.a, "cluster-plain", count, self.args.slow, "cut")

        def running_on_a():
            rows = harness.executions(ids)
            return [r for r in rows if r.host == "a" and r.ended is None]

        wait_until(running_on_a, self.args.timeout, 0.2, "steps running on host a")
        cut_at = harness.db_now()
        self.net.link("a", "down")
        killed = kill_all(self.net.ns("a"))
        self.a.reap()
        self.say(f"host a cut off, {killed} processes SIGKILLed")
        harness.wait_ended(ids, self.args.timeout)
        rows = harness.executions(ids)
        figures = harness.check(ids, rows, expected)
        cut_short = {(r.run_id, r.path) for r in rows if r.host == "a" and r.ended is None and r.started <= cut_at}
        takeovers = []
        for run_id, path in cut_short:
            after = [
                r.started for r in rows if (r.run_id, r.path) == (run_id, path) and r.host == "b" and r.started > cut_at
            ]
            if after:
                takeovers.append((min(after) - cut_at).total_seconds())
        from workflows.models import StepRun

        lost = [
            (at - cut_at).total_seconds()
            for run_id, path in cut_short
            for at in StepRun.objects.filter(run_id=run_id, path=path, error__type="WorkerLost").values_list(
                "finished_at", flat=True
            )
        ]
        figures["steps running on a when cut"] = len(cut_short)
        figures["cut to the attempt failed as WorkerLost by b's recovery, max"] = f"{max(lost, default=0):.1f} s"
        figures["taken over by b"] = len(takeovers)
        figures["takeover: cut to b running it again, max"] = f"{max(takeovers, default=0):.1f} s"
        figures["lease"] = f"{os.environ['WORKFLOWS_LEASE_SECONDS']} s"
        # a step runs again only if host a had started it before the cut (its body may have ended just before
        # the cut, its outcome not yet committed: that one is re-run too, as a lost worker's is)
        firsts: dict[tuple[int, str], harness.Execution] = {}
        for r in rows:
            firsts.setdefault((r.run_id, r.path), r)
        repeated = [k for k in firsts if sum((r.run_id, r.path) == k for r in rows) > 1]
        extra_ok = all(firsts[k].host == "a" and firsts[k].started <= cut_at for k in repeated)

        # A comes back: its link up, its processes restarted; it serves its API and runs its own queue's steps
        self.net.link("a", "up")
        self.a.start()
        self.api.ready(self.a)
        rejoin = self.launch(self.a, "cluster-on-a", 2, 0.1, "rejoin")
        harness.wait_ended(rejoin, self.args.timeout)
        rejoined = harness.check(rejoin, after := harness.executions(rejoin), expected)
        on_a = bool(after) and all(r.host == "a" for r in after)
        status = [self.api.call(self.a, "GET", f"/api/runs/{i}/")[1] for i in ids[:2]]
        seen = all(isinstance(s, dict) and s.get("status") == "succeeded" for s in status)
        figures["runs after a rejoined (on a)"] = f"{len(rejoin) - rejoined['runs lost or wrong']} of {len(rejoin)}"
        figures["failed"] = _failed(figures) + [
            n
            for n, ok in (
                ("every cut-short step taken over by b", len(takeovers) == len(cut_short) > 0),
                ("re-executions only of steps a had started", extra_ok),
                ("a rejoined: runs on its own queue", on_a and not _failed(rejoined)),
                ("a rejoined: its API shows the runs", seen),
            )
            if not ok
        ]
        return figures

    # ---- 4. Redis restarts, then PostgreSQL fails over to its replica, while both hosts run ----------------
    def outages(self) -> dict[str, Any]:
        import redis

        from workflows.models import Run

        from .flows import STEPS, expected

        ids = self.launch(self.a, "cluster-plain", self.args.runs, self.args.pause, "outage-a")
        ids += self.launch(self.b, "cluster-plain", self.args.runs, self.args.pause, "outage-b")
        steps = len(ids) * STEPS

        def done(n):
            return lambda: len([r for r in harness.executions(ids) if r.ended]) >= n

        wait_until(done(steps // 4), self.args.timeout, 0.2, "a quarter of the steps")
        self.redis.kill()
        time.sleep(1)
        self.redis.start(empty=True)  # every queued job and worker registration is gone
        wait_until(lambda: _pings(redis.Redis.from_url(REDIS_URL)), 30, 0.1, "Redis back")
        self.say("Redis SIGKILLed and restarted empty")
        wait_until(done(steps // 2), self.args.timeout, 0.2, "half of the steps")
        committed = dict(Run.objects.filter(pk__in=ids).values_list("pk", "last_seq"))
        self.db.fail_over()
        failed_over_at = harness.db_now()  # on the promoted replica
        self.say("PostgreSQL primary stopped (immediate), replica promoted")
        harness.wait_ended(ids, self.args.timeout)
        rows = harness.executions(ids)
        figures = harness.check(ids, rows, expected)
        now = dict(Run.objects.filter(pk__in=ids).values_list("pk", "last_seq"))
        lost = sum(now.get(pk, 0) < seq for pk, seq in committed.items())
        after = [r for r in rows if r.started > failed_over_at]
        figures["transitions committed before the failover, lost"] = lost
        figures["executions after the failover on a / b"] = (
            f"{sum(r.host == 'a' for r in after)} / {sum(r.host == 'b' for r in after)}"
        )
        figures["failed"] = _failed(figures) + [
            n
            for n, ok in (
                ("no committed transition lost", lost == 0),
                ("hosts ran steps after the failover", bool(after)),
            )
            if not ok
        ]
        return figures


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _failed(figures: dict[str, Any]) -> list[str]:
    names = ("runs lost or wrong", "journal gaps", "transitions applied twice", "attempts executed twice")
    return [name for name in names if figures[name]]


SCENARIOS = {
    "1. runs from host a's API run on both hosts, pool limit held": "pool",
    "2. a websocket on host b sees host a's run": "live",
    "3. host a cut off and killed; b takes over; a rejoins": "cut",
    "4. Redis restart, PostgreSQL failover": "outages",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster.scenarios")
    parser.add_argument("--tag", required=True, help="the namespaces' name prefix (tests.cluster.netns)")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds each step of scenario 4 lasts")
    parser.add_argument("--slow", type=float, default=3.0, help="seconds each step of scenario 3 lasts")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each condition")
    args = parser.parse_args(argv)

    cluster, code = Cluster(args), 1
    try:
        cluster.start()
        code = 0
        for title, method in SCENARIOS.items():
            started = time.monotonic()
            figures = getattr(cluster, method)()
            figures["scenario time"] = f"{time.monotonic() - started:.0f} s"
            failed, problems = figures.pop("failed"), figures.pop("problems")
            print(f"\n| {title} | |\n| --- | ---: |")
            for name, value in figures.items():
                print(f"| {name} | {value} |")
            for item in failed + problems:
                print(f"FAILED: {item}")
            code = code or (1 if failed else 0)
            print(flush=True)
        print(f"cluster: {'PASSED' if code == 0 else 'FAILED'} (http port {HTTP_PORT})", flush=True)
    finally:
        cluster.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
