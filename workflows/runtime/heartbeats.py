"""Process heartbeats: every worker and recovery loop says every few seconds that it lives, and what it does.

Storage: one Redis hash, ``workflows:heartbeats``, with a field per process (``<kind>:<host>:<pid>``) holding a
JSON object. Redis rather than a table because every worker and loop already holds a Redis connection and the
data is as short-lived as RQ's own worker registrations: a beat is one HSET, with no row churn in the database
whose locks the engine's transitions need, and no migration. One hash rather than a key per process with a TTL so
that a dead process's last beat stays readable for a while: the operations view shows it as *gone* (where, and
since when) instead of it silently vanishing; readers drop entries older than ``FORGET_AFTER``. Times come from
Redis' clock (``TIME``), so hosts with skewed clocks still agree on ages.

Cheap: a daemon thread beats every ``PROCESS_HEARTBEAT_SECONDS``, copying what the process keeps in memory (a
worker's current job, a loop's last tick); nothing is written per step. A process that stops cleanly removes its
entry; one that dies stops beating and is *gone* once its last beat is older than ``MISSED_BEATS`` periods.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import redis
from redis.exceptions import RedisError

from .. import conf

log = logging.getLogger(__name__)
KEY = "workflows:heartbeats"
MISSED_BEATS = 3  # beats a process may miss (a loaded host, a slow Redis) before it counts as gone
FORGET_AFTER = 600.0  # seconds a gone process is still shown
Kind = Literal["worker", "recovery"]


def connection() -> redis.Redis:
    """A client of the app's Redis with short timeouts (a beat or a page must not hang on a lost Redis). Not RQ's
    (``runtime.dispatch``): the web layer reads beats and may not import rq."""
    url = conf.redis_url()
    if _clients.get(url) is None:
        _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return _clients[url]


_clients: dict[str, redis.Redis] = {}


def period() -> float:
    return float(conf.get("PROCESS_HEARTBEAT_SECONDS"))


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


@dataclass(frozen=True)
class Heartbeat:
    """One process's last beat. ``state``: what its kind reports (a worker's ``name``, ``queues`` and
    ``step_run_id``; a loop's ``last_tick``, ``last_actions``, ``totals``, ``failing_since``)."""

    kind: str
    host: str
    pid: int
    started: float  # epoch seconds (Redis' clock)
    last_beat: float
    age: float  # seconds since the last beat
    alive: bool
    state: dict[str, Any]  # its ``*_ago`` values count from now, not from the beat

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "host": self.host, "pid": self.pid, "started": self.started,
            "last_beat": self.last_beat, "age": round(self.age, 1), "alive": self.alive,
            "uptime": round(self.last_beat - self.started, 1), **self.state,
        }  # fmt: skip


class Beater:
    """Beats for this process in a daemon thread: ``kind`` and whatever ``state()`` returns (it must be cheap and
    must not touch the database). ``stop()`` removes the entry: a clean exit is not a death."""

    def __init__(self, kind: Kind, state: Callable[[], dict[str, Any]] = dict) -> None:
        self.kind, self.state = kind, state
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.field = f"{kind}:{self.host}:{self.pid}"
        self.started: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"workflows-heartbeat-{kind}", daemon=True)

    def start(self) -> Beater:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if os.getpid() == self.pid:  # not in a forked work horse, whose parent still beats
            try:
                connection().hdel(KEY, self.field)
            except RedisError:
                pass

    def beat(self) -> None:
        client = connection()
        now = _redis_now(client)
        if self.started is None:
            self.started = now
        body = {"kind": self.kind, "host": self.host, "pid": self.pid, "started": self.started, "at": now}
        client.hset(KEY, self.field, json.dumps({**body, "state": self.state()}, default=str))

    def _run(self) -> None:
        failing = False
        while True:
            try:
                self.beat()
                failing = False
            except Exception as exc:  # Redis away: beat again later; say so once
                if not failing:
                    log.warning("heartbeat of %s failed: %s: %s", self.field, type(exc).__name__, exc)
                failing = True
            if self._stop.wait(period()):
                return


@contextmanager
def beating(kind: Kind, state: Callable[[], dict[str, Any]] = dict) -> Iterator[Beater]:
    beater = Beater(kind, state).start()
    try:
        yield beater
    finally:
        beater.stop()


def read(kind: str | None = None) -> list[Heartbeat]:
    """Every process's last beat (of ``kind``, if given), alive ones first, then by host and pid. Entries gone for
    longer than ``FORGET_AFTER`` are deleted on the way (a compare-free HDEL: a process beating again re-adds
    itself)."""
    client = connection()
    now, raw = _redis_now(client), client.hgetall(KEY)
    limit, beats, forgotten = MISSED_BEATS * period(), [], []
    for field, value in raw.items():
        try:
            data = json.loads(value)
            age = max(0.0, now - float(data["at"]))
        except (ValueError, KeyError, TypeError):
            forgotten.append(field)
            continue
        if age > FORGET_AFTER:
            forgotten.append(field)
        elif kind is None or data["kind"] == kind:
            state = {
                k: v + age if k.endswith("_ago") and v is not None else v for k, v in (data.get("state") or {}).items()
            }
            beats.append(
                Heartbeat(
                    kind=data["kind"], host=data["host"], pid=int(data["pid"]), started=float(data["started"]),
                    last_beat=float(data["at"]), age=age, alive=age <= limit, state=state,
                )
            )  # fmt: skip
    if forgotten:
        client.hdel(KEY, *forgotten)
    return sorted(beats, key=lambda b: (not b.alive, b.kind, b.host, b.pid))


class TickRecord:
    """What a recovery loop did, kept in memory for its heartbeat: the last tick's time and actions, the last tick
    that did something, totals since start, and since when ticks fail (if they do)."""

    def __init__(self) -> None:
        self.last_tick: float | None = None  # time.time() of this host: sent as an age, so skew does not matter
        self.last_actions: dict[str, int] = {}
        self.last_busy: float | None = None
        self.totals: dict[str, int] = {}
        self.failing_since: float | None = None
        self.error = ""

    def ticked(self, done: dict[str, int]) -> None:
        self.last_tick, self.failing_since, self.error = time.time(), None, ""
        self.last_actions = dict(done)
        if any(done.values()):
            self.last_busy = self.last_tick
        for name, count in done.items():
            self.totals[name] = self.totals.get(name, 0) + count

    def failed(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = time.time()
        self.error = type(exc).__name__

    def state(self) -> dict[str, Any]:
        now = time.time()

        def ago(t: float | None) -> float | None:
            return None if t is None else round(now - t, 3)

        return {
            "tick_seconds": float(conf.get("TICK_SECONDS")), "last_tick_ago": ago(self.last_tick),
            "last_actions": self.last_actions, "last_busy_ago": ago(self.last_busy), "totals": self.totals,
            "failing_for": ago(self.failing_since), "error": self.error,
        }  # fmt: skip
