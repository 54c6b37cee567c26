"""CPU time and memory of process trees, from ``/proc`` (Linux; standard library only: the peers' virtualenv
imports this too).

A measure's CPU is the sum over every process it involves (workers and their forked work horses, Redis, the
database server and its backends, the driver) of user + system time, children's included. A process that ends
during the measure is counted by its parent's ``cutime``/``cstime`` once reaped (RQ reaps its horses,
PostgreSQL's postmaster its backends), so the difference of two snapshots of the same roots is exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, seconds of CPU of ``pid`` and its reaped children), or None if it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17
    return int(fields[1]), sum(int(v) for v in fields[11:15]) / TICK


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            got = _stat(int(entry.name))
            if got:
                tree.setdefault(got[0], []).append(int(entry.name))
    return tree


def family(roots: list[int]) -> list[int]:
    """``roots`` and all their living descendants."""
    tree, out, todo = _children(), [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.append(pid)
            todo.extend(tree.get(pid, []))
    return out


def seconds(roots: list[int]) -> float:
    """CPU seconds used so far by ``roots``, their living descendants and the descendants they reaped."""
    total = 0.0
    for pid in family(roots):
        got = _stat(pid)
        if got:
            total += got[1]
    return total


def rss_mb(pid: int) -> float | None:
    """Resident memory of one process, MB (None if it is gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def own_seconds() -> float:
    """CPU seconds of this process alone (its threads; not its children, which are measured as workers)."""
    t = os.times()
    return t.user + t.system


@dataclass
class Meter:
    """CPU seconds of named groups over one measure: ``with Meter({...}) as m: ...`` then ``m.used``. A group is
    a list of root pids (their trees are counted) or a function returning CPU seconds so far."""

    groups: dict[str, list[int] | Callable[[], float]]
    used: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {name: g() if callable(g) else seconds(g) for name, g in self.groups.items()}

    def __enter__(self) -> Meter:
        self._before = self._now()
        return self

    def __exit__(self, *exc) -> None:
        after = self._now()
        self.used = {name: after[name] - self._before[name] for name in after}

    @property
    def total(self) -> float:
        return sum(self.used.values())


def shared_groups() -> dict[str, list[int] | Callable[[], float]]:
    """What every measure involves besides its own workers: this process (the driver) and the servers
    ``bench.run`` started, whose pids it passes as BENCH_REDIS_PID and BENCH_PG_PID."""
    groups: dict[str, list[int] | Callable[[], float]] = {"driver": own_seconds}
    for name, var in (("redis", "BENCH_REDIS_PID"), ("database", "BENCH_PG_PID")):
        if os.environ.get(var):
            groups[name] = [int(os.environ[var])]
    return groups
