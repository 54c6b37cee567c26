"""Hosts as Linux network namespaces on 198.18.0.0/15 (the benchmarking range: nothing outside is ever addressed).

One namespace per host, each with an ``eth0`` veth whose peer is a port of a bridge living in a namespace of its
own (``ctl``, which also holds the test's own address, so the harness reaches every host as an outsider would).
Names are ``wfc<pid>x<tag>-<host>``: unique per run, and ``cleanup_stale`` deletes those of runs whose process
is gone (a run that was SIGKILLed leaves its namespaces behind). Needs root (``ip netns``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

PREFIX = "wfc"
NETWORK = "198.18.0.0/15"
CONTROL = "ctl"
ADDRESSES = {
    "db": "198.18.0.1",  # PostgreSQL primary, Redis
    "replica": "198.18.0.2",  # PostgreSQL streaming replica
    "a": "198.18.0.11",  # app hosts: daphne, 2 workers, a recovery loop
    "b": "198.18.0.12",
    CONTROL: "198.18.0.100",  # the bridge's namespace, where the harness runs
}
NAME_RE = re.compile(rf"\A{PREFIX}(\d+)x[0-9a-f]+-\w+\Z")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def existing() -> list[str]:
    out = ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def pids(ns: str) -> list[int]:
    out = ip("netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split()]


def kill_all(ns: str) -> int:
    """SIGKILL every process in namespace ``ns`` (all of them ours: the harness started them there)."""
    killed = 0
    for _ in range(20):  # a process may fork while we kill: go again until none is left
        found = pids(ns)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.1)
    return killed


def delete(ns: str) -> None:
    kill_all(ns)
    ip("netns", "del", ns, check=False)


def cleanup_stale() -> list[str]:
    """Delete the namespaces of earlier runs whose process is no longer alive."""
    removed = []
    for ns in existing():
        m = NAME_RE.match(ns)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            delete(ns)
            removed.append(ns)
    return removed


@dataclass
class Network:
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}x{uuid.uuid4().hex[:6]}")
    created: list[str] = field(default_factory=list)

    def ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    def up(self) -> None:
        """Create the bridge namespace and every host; on failure, delete what was made and raise."""
        try:
            ctl = self.ns(CONTROL)
            ip("netns", "add", ctl)
            self.created.append(ctl)
            ip("-n", ctl, "link", "add", "br0", "type", "bridge")
            ip("-n", ctl, "addr", "add", f"{ADDRESSES[CONTROL]}/15", "dev", "br0")
            for name in ("lo", "br0"):
                ip("-n", ctl, "link", "set", name, "up")
            for host in ADDRESSES:
                if host != CONTROL:
                    self.add_host(host)
        except BaseException:
            self.down()
            raise

    def add_host(self, host: str) -> None:
        ns, ctl, port = self.ns(host), self.ns(CONTROL), f"p-{host}"
        ip("netns", "add", ns)
        self.created.append(ns)
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", ctl)
        ip("-n", ctl, "link", "set", port, "master", "br0")
        ip("-n", ctl, "link", "set", port, "up")
        ip("-n", ns, "addr", "add", f"{ADDRESSES[host]}/15", "dev", "eth0")
        for name in ("lo", "eth0"):
            ip("-n", ns, "link", "set", name, "up")

    def link(self, host: str, state: str) -> None:
        """``state`` "down": the host is cut off the network (its processes run on); "up": it is back."""
        ip("-n", self.ns(host), "link", "set", "eth0", state)

    def exec(self, host: str) -> list[str]:
        """The command prefix that runs a program on ``host``."""
        return ["ip", "netns", "exec", self.ns(host)]

    def down(self) -> None:
        """Kill every process in the namespaces and delete them (veths and the bridge go with them)."""
        for ns in reversed(self.created):
            delete(ns)
        self.created.clear()
