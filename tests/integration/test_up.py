"""`manage.py up` end to end: embedded Redis, migrations, demo admin, real workers, recovery loop and daphne.

It runs on its own SQLite database and Redis in a temporary WORKFLOWS_VAR_DIR, not on the test database.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from workflows.devserver.processes import free_port, wait_until

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def processes_of(var_dir: Path) -> list[int]:
    """Living processes of the `up` that uses ``var_dir``: it is in their environment (inherited by every child
    and work horse) or, for redis-server, which overwrites its environment with its title, in their command line.
    """
    marker, path = f"WORKFLOWS_VAR_DIR={var_dir}".encode(), str(var_dir).encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    environ = f.read().split(b"\0")
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if marker in environ or path in cmdline:
                found.append(int(entry.name))
    return found


def get(opener: urllib.request.OpenerDirector, url: str, data: dict | None = None) -> tuple[int, str, str]:
    """(status, body, path of the final URL) of a GET, or of a POST of ``data``, following redirects."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with opener.open(url, body, timeout=10) as response:
            return response.status, response.read().decode(), urllib.parse.urlsplit(response.geturl()).path
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), urllib.parse.urlsplit(exc.geturl()).path


class Up:
    """``manage.py up`` in a process group of its own, its output collected."""

    def __init__(self, tmp_path, *args: str) -> None:
        self.port = free_port()
        self.var_dir = tmp_path / "var"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"REDIS_URL", "DATABASE_URL", "DEMO_PASSWORD", "WORKFLOWS_WORKER_CLASS", "SECRET_KEY"}
        }
        self.env.update(
            DJANGO_SETTINGS_MODULE="project.settings", WORKFLOWS_VAR_DIR=str(self.var_dir), PYTHONUNBUFFERED="1"
        )
        self.env.update(DEBUG="1", ALLOWED_HOSTS="127.0.0.1,localhost")  # --demo-user: a local DEBUG site only
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "up", "--demo-user", "--port", str(self.port), *args],
            cwd=BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[bytes] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, b"")))
        self.reader.daemon = True
        self.reader.start()
        self.base = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return b"".join(list(self.lines)).decode(errors="replace")

    def serving(self, opener) -> None:
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, f"up exited with {self.proc.returncode}:\n{self.output()}"
            try:
                if get(opener, f"{self.base}/accounts/login/")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"daphne never answered:\n{self.output()}"
            time.sleep(0.3)

    def run_workflow(self) -> dict:
        run = subprocess.run(
            [sys.executable, "manage.py", "run_workflow", "trip-planner"]
            + ["--input", '{"city": "Paris", "days": 2}', "--wait", "60"],
            cwd=BASE_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{self.output()}"
        return json.loads(run.stdout.strip().splitlines()[-1])

    def kill(self) -> None:
        for pid in [self.proc.pid] * (self.proc.poll() is None) + processes_of(self.var_dir):
            try:
                if os.getpgid(pid) != os.getpgrp():
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait(10)


def test_up_serves_runs_workflows_and_stops_cleanly(tmp_path):
    up = Up(tmp_path)
    output, var_dir, port = up.output, up.var_dir, up.port
    try:
        base = up.base
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        up.serving(opener)

        status, page, _ = get(opener, f"{base}/admin/login/")
        assert status == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"csrfmiddlewaretoken": token, "username": "admin", "password": "admin", "next": "/admin/"}
        status, page, path = get(opener, f"{base}/admin/login/?next=/admin/", form)
        assert (status, path) == (200, "/admin/"), "the demo superuser admin/admin cannot log in to the admin"
        assert 'name="password"' not in page

        result = up.run_workflow()
        assert result["status"] == "succeeded", result
        assert result["output"]["city"] == "Paris"

        text = output()
        assert f"http://127.0.0.1:{port}/" in text and "log in as admin / admin" in text, text
        assert "admin / admin is for LOCAL USE ONLY" in text, text  # said loudly when it is created
        for name in ("worker-1", "worker-2", "recovery", "daphne"):
            assert f"[up] started {name} (pid " in text, text
        assert "[recovery] " in text and "[daphne] " in text, text  # children's own lines, prefixed
        assert len(processes_of(var_dir)) >= 6, "expected redis, 2 workers, recovery and daphne running"

        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(30) == 0, output()
        up.reader.join(5)
        deadline = time.monotonic() + 5
        while processes_of(var_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_of(var_dir) == [], f"processes left behind:\n{output()}"
        assert "[up] stopped Redis" in output()
    finally:
        up.kill()


def _pids(text: str, name: str) -> list[str]:
    return re.findall(rf"\[up\] started {name} \(pid (\d+)\)", text)


@pytest.mark.parametrize("reload", [True, False], ids=["reload", "noreload"])
def test_up_restarts_workers_and_daphne_when_code_changes_unless_noreload(tmp_path, reload):
    code = tmp_path / "code"
    code.mkdir()
    (code / "tasks.py").write_text("VALUE = 1\n")
    up = Up(tmp_path, "--watch", str(code), *([] if reload else ["--noreload"]))
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        up.serving(opener)
        wait_until(lambda: "restarting on code changes" in up.output() or not reload, 30, what="the watcher")
        (code / "tasks.py").write_text("VALUE = 2\n")
        (code / "notes.txt").write_text("not code\n")
        if reload:
            wait_until(lambda: len(_pids(up.output(), "daphne")) == 2, 60, what="daphne started again")
            text = up.output()
            assert "code changed (tasks.py): restarting" in text, text
            for name in ("worker-1", "worker-2", "recovery", "daphne"):
                first, second = _pids(text, name)
                assert first != second, text
            up.serving(opener)
        assert up.run_workflow()["status"] == "succeeded"
        if not reload:  # no watcher at all: the change (seconds ago now) restarted nothing
            assert "restarting" not in up.output() and len(_pids(up.output(), "daphne")) == 1, up.output()
    finally:
        up.kill()
