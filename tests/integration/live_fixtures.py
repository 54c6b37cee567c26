"""A real stack for live-update tests and the latency bench: daphne, workers and a websocket client.

Every process runs in its own session (process group) so that it can be killed whole, and logs to a file that
``Stack.stop_all`` prints. Nothing here depends on pytest, so ``bench/push_latency.py`` uses it too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.sync.client import connect

from workflows.devserver.processes import free_port, wait_until  # noqa: F401 - the live tests import them from here

BASE_DIR = Path(__file__).resolve().parents[2]


def database_url(connection) -> str:
    """DATABASE_URL of the database ``connection`` uses (the test database, once it exists)."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    return urlunsplit(urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}"))


def session_cookie(user) -> str:
    """A session id for ``user``, stored in the database the child processes share."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.signal(signal.SIGCONT)  # a stopped process must wake to die cleanly
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Stack:
    """Child processes sharing one environment (settings, REDIS_URL, DATABASE_URL)."""

    env: dict[str, str]
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Proc:
        log = self.log_dir / f"{name}-{len(self.procs)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                args,
                cwd=BASE_DIR,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def manage(self, name: str, *args: str) -> Proc:
        return self.start(name, sys.executable, "manage.py", *args)

    def daphne(self, port: int) -> Proc:
        proc = self.start(
            "daphne", sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"
        )

        def listening():
            if not proc.alive():
                raise RuntimeError(f"daphne exited:\n{proc.output()}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 60, 0.05, "daphne to listen")
        return proc

    def worker(self) -> Proc:
        return self.manage("worker", "workflows_worker", "--worker-class", "rq.worker.SimpleWorker")

    def recovery(self) -> Proc:
        return self.manage("recovery", "workflows_recover", "--loop")

    def stop_all(self, show_logs: bool = True) -> None:
        for proc in self.procs:
            proc.kill()
        if show_logs:
            for proc in self.procs:
                text = proc.output().strip()
                if text:
                    print(f"----- {proc.name} (pid {proc.popen.pid}) -----\n{text[-20000:]}")


class LiveSocket:
    """A protocol client over a real websocket (the ``websockets`` library): acknowledges every frame."""

    def __init__(self, port: int, cookie: str, open_timeout: float = 10) -> None:
        self.ws = connect(
            f"ws://127.0.0.1:{port}/ws/",
            origin=f"http://127.0.0.1:{port}",
            additional_headers={"Cookie": f"sessionid={cookie}"},
            open_timeout=open_timeout,
            proxy=None,
            max_queue=None,
        ).__enter__()  # the connection itself (plain connect() warns in websockets >= 17)
        self.received = 0

    def send(self, **frame: Any) -> None:
        self.ws.send(json.dumps(frame))

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame = json.loads(self.ws.recv(timeout))
        self.received += 1
        self.send(op="ack", n=self.received)
        return frame

    def until(self, predicate, timeout: float = 30) -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while not frames or not predicate(frames[-1]):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout}s; last frames: {frames[-5:]}")
            frames.append(self.recv(left))
        return frames

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # the server may be gone already
            pass
