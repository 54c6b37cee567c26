"""Real RQ worker processes and the recovery loop, against the embedded Redis and the test database.

Each process runs ``manage.py`` in its own session (process group). Teardown SIGKILLs that group and the group
of every descendant: RQ's forking worker puts each work horse in a process group of its own. A process's output
goes to a log file that teardown prints (pytest shows it for a failed test).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from workflows.devserver.processes import kill_family, wait_until

BASE_DIR = Path(__file__).resolve().parents[2]
FORKING = "rq.worker.Worker"
SIMPLE = "rq.worker.SimpleWorker"


def worker_database_url() -> str:
    """DATABASE_URL of the test database this process uses (call once it exists)."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def wait_for(predicate: Callable[[], object], timeout: float = 15, poll: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; return that. Fails the test after ``timeout``."""
    try:
        return wait_until(predicate, timeout, poll, what)
    except TimeoutError as exc:
        pytest.fail(str(exc))


FAST = {"WORKFLOWS_LEASE_SECONDS": "1.5", "WORKFLOWS_REQUEUE_AFTER_SECONDS": "1"}  # leases and re-enqueues in seconds


def finished(run, timeout: float = 60):
    """The run once terminal or suspended; on timeout, fail showing its steps."""
    from workflows.models import StepRun

    try:
        return run.wait(timeout)
    except TimeoutError:
        steps = list(StepRun.objects.filter(run=run).values("path", "attempt", "status", "error", "worker"))
        pytest.fail(f"run {run.pk} still {run.status} after {timeout}s; steps: {steps}")


def attempts(run, path: str) -> list[tuple[int, str, str | None]]:
    """(attempt, status, error type) of every attempt of a step path."""
    from workflows.models import StepRun

    rows = StepRun.objects.filter(run=run, path=path).order_by("attempt")
    return [(s.attempt, s.status, (s.error or {}).get("type")) for s in rows]


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL the process, its process group and every descendant's group (work horses); reap it."""
        kill_family(self.popen)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Processes:
    """Starts ``manage.py`` commands as separate process groups; ``stop_all`` kills them and prints their logs."""

    env: dict[str, str]
    log_dir: Path
    redis: object
    started: list[Process] = field(default_factory=list)

    def start(self, *args: str, name: str, env: dict[str, str] | None = None) -> Process:
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=BASE_DIR,
                env={**self.env, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Process(name, popen, log)
        self.started.append(proc)
        return proc

    def worker(self, worker_class: str = SIMPLE, *, env: dict[str, str] | None = None, ready: bool = True) -> Process:
        """Start one RQ worker on every pool's queue; by default, wait until it has registered in Redis."""
        name = f"it-{uuid.uuid4().hex[:10]}"
        proc = self.start("workflows_worker", "--worker-class", worker_class, "--name", name, name=name, env=env)
        if ready:
            wait_for(lambda: self._alive(proc) and self.redis.exists(f"rq:worker:{name}"), 30, what=f"worker {name}")
        return proc

    def workers(self, n: int, worker_class: str = SIMPLE, *, env: dict[str, str] | None = None) -> list[Process]:
        procs = [self.worker(worker_class, env=env, ready=False) for _ in range(n)]
        for p in procs:
            wait_for(lambda p=p: self._alive(p) and self.redis.exists(f"rq:worker:{p.name}"), 30, what=p.name)
        return procs

    def recovery(self, *, env: dict[str, str] | None = None) -> Process:
        """Start the recovery loop (expired leases, lost jobs, due timers)."""
        return self.start("workflows_recover", "--loop", name=f"recover-{uuid.uuid4().hex[:6]}", env=env)

    def _alive(self, proc: Process) -> bool:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
        return True

    def stop_all(self) -> None:
        for proc in self.started:
            proc.kill()
        for proc in self.started:
            text = proc.output().strip()
            if text:
                print(f"----- {proc.name} (pid {proc.pid}) -----\n{text}")


@pytest.fixture
def live(engine_db, redis_conn, tmp_path):
    """Start real worker and recovery processes sharing this test's database and (flushed) Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": os.environ["REDIS_URL"],
        "DATABASE_URL": worker_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WORKFLOWS_WORKER_CLASS", None)
    procs = Processes(env=env, log_dir=tmp_path, redis=redis_conn)
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture
def start_workers(live):
    """``start_workers(n, worker_class=SIMPLE, env=None)``: n ready worker processes."""
    return live.workers


@pytest.fixture
def recovery_loop(live):
    """The recovery loop, running for the whole test."""
    return live.recovery()
