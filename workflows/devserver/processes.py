"""Process helpers shared by ``manage.py up``, the benchmark harness and the test suite. No Django or pydantic
here: the benchmark loads this file by its path in its peers' virtualenv, which has neither (``bench.services``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def descendants(pid: int) -> list[int]:
    """Every living descendant of ``pid``, parents before their children (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])  # the name may hold spaces or parentheses
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_family(popen: subprocess.Popen, wait: float = 10) -> None:
    """SIGKILL a child started in a process group of its own, that group and every descendant's group; reap it.

    RQ's forking worker puts each work horse in a process group of its own (``os.setpgrp()``), so killing the
    worker's group alone would leave a running horse behind. The group is stopped first, so the worker cannot
    fork a new horse while its descendants are collected. Raises ``TimeoutExpired`` if it is not reaped in time.
    """
    if popen.returncode is not None:
        return  # already reaped: its pid may belong to another process by now
    groups = {popen.pid}
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGSTOP)
    for pid in descendants(popen.pid):
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(pid))
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    popen.wait(wait)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float = 20, poll: float = 0.02, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy and return that; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)
