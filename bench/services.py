"""The processes a benchmark needs: Redis, PostgreSQL, RQ workers (ours and raw), daphne, peers' workers.

Each child runs in a session (process group) of its own and logs to a file. ``Procs.stop_all`` SIGKILLs each
group and the group of every descendant (RQ's forking worker puts each work horse in a group of its own).

The peers' scripts (``bench/peers``) import this module in a virtualenv of their own, with Celery and DBOS but
neither Django nor pydantic: importing ``workflows.processes`` there would run the ``workflows`` package's
``__init__``, so the process helpers are loaded from that file by its path instead (it imports no Django).
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
FORKING = "rq.worker.Worker"
SIMPLE = "rq.worker.SimpleWorker"
WORKER_CLASSES = {"Worker": FORKING, "SimpleWorker": SIMPLE}


def _load_processes():
    path = BASE_DIR / "workflows" / "devserver" / "processes.py"
    spec = importlib.util.spec_from_file_location("workflows_processes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_processes = _load_processes()
wait_for = _processes.wait_until


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def check(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()[-5000:]}")
        return True

    def kill(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            _processes.kill_family(self.popen, wait=10)


@dataclass
class Procs:
    """Child processes sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}-{len(self.started)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                args, cwd=BASE_DIR, env={**self.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, popen, log)
        self.started.append(proc)
        return proc

    def workflows_workers(
        self, n: int, worker_class: str, queues: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> list[Proc]:
        """n ``workflows_worker`` processes (of ``queues``, default all), registered in Redis before this returns."""
        names = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        procs = [
            self.start(name, sys.executable, "manage.py", "workflows_worker", "--worker-class", worker_class,
                       "--name", name, *queues, env=env)
            for name in names
        ]  # fmt: skip
        self._registered(procs, names)
        return procs

    def rq_workers(self, n: int, worker_class: str, queue: str) -> list[Proc]:
        """n plain ``rq worker`` processes (no Django), JSON serializer, like ours."""
        names = [f"raw-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        rq = str(Path(sys.executable).with_name("rq"))
        procs = [
            self.start(name, rq, "worker", "--url", self.env["REDIS_URL"], "--worker-class", worker_class,
                       "--serializer", "rq.serializers.JSONSerializer", "--name", name, "--logging_level", "WARNING",
                       queue)
            for name in names
        ]  # fmt: skip
        self._registered(procs, names)
        return procs

    def _registered(self, procs: list[Proc], names: list[str]) -> None:
        import redis

        conn = redis.Redis.from_url(self.env["REDIS_URL"])
        for proc, name in zip(procs, names, strict=True):
            wait_for(lambda p=proc, n=name: p.check() and conn.exists(f"rq:worker:{n}"), 60, what=f"worker {name}")

    def daphne(self, port: int) -> Proc:
        proc = self.start("daphne", sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                          "project.asgi:application")  # fmt: skip

        def listening() -> bool:
            proc.check()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, 60, 0.05, "daphne to listen")
        return proc

    def stop(self, procs: list[Proc]) -> None:
        for proc in procs:
            proc.kill()

    def stop_all(self) -> None:
        self.stop(self.started)


# --- Redis ---------------------------------------------------------------------------------------------------


def start_redis(directory: Path):
    """An embedded redis-server on a unix socket (no persistence): (process, REDIS_URL)."""
    from workflows.devserver import redis_server

    return redis_server.start(directory, appendonly=False)


def stop_redis(proc) -> None:
    from workflows.devserver import redis_server

    redis_server.stop(proc)


# --- PostgreSQL ----------------------------------------------------------------------------------------------


def start_postgres():
    """A throwaway PostgreSQL cluster (``tests.pgcluster``): (cluster, the URL of its ``bench`` database).

    Durable (fsync, synchronous_commit, full_page_writes on, PostgreSQL's defaults): what the README tells
    production to run; the test suite's unsafe settings would flatter the product against raw RQ."""
    from tests import pgcluster

    cluster = pgcluster.start("bench", durable=True)
    return cluster, cluster.url


def stop_postgres(cluster) -> None:
    from tests import pgcluster

    pgcluster.stop(cluster)
