"""What the scenarios share: the API client, waiting for hosts and runs, and reading what the steps recorded.

Runs inside the ``ctl`` namespace (``tests/cluster/__main__.py`` puts it there): it reaches the hosts over the
namespace network like any client, and the database through the same ``DATABASE_URL`` host list as the hosts.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflows.devserver.processes import wait_until

from .services import REDIS_URL, Host

TABLE = """CREATE TABLE cluster_execution (
    id bigserial PRIMARY KEY, run_id bigint NOT NULL, path text NOT NULL, attempt int NOT NULL, host text NOT NULL,
    pid int NOT NULL, started timestamptz NOT NULL DEFAULT clock_timestamp(), ended timestamptz)"""
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


class Api:
    def __init__(self, token: str) -> None:
        self.token = token

    def call(self, host: Host, method: str, path: str, body: Any = None, timeout: float = 15) -> tuple[int, Any]:
        request = urllib.request.Request(
            host.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with _opener.open(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")[:500]
        except OSError as exc:
            return 0, str(exc)

    def start(self, host: Host, workflow: str, value: int, pause: float, key: str) -> int:
        """Start a run through ``host``'s API (retried: the same idempotency key returns the same run)."""

        def attempt():
            status, body = self.call(
                host,
                "POST",
                f"/api/workflows/{workflow}/runs/",
                {"input": {"value": value, "pause": pause}, "idempotency_key": key},
            )
            return body["id"] if status in (200, 201) else None

        return wait_until(attempt, 60, 0.5, f"a run of {workflow} started through host {host.name}")

    def ready(self, host: Host, timeout: float = 180) -> None:
        """Host ``host`` answers its API and its workers are registered in Redis."""
        import redis

        wait_until(
            lambda: self.call(host, "GET", "/api/workflows/", timeout=5)[0] == 200,
            timeout,
            0.5,
            f"host {host.name}'s API",
        )
        client = redis.Redis.from_url(REDIS_URL)
        wait_until(
            lambda: all(client.exists(f"rq:worker:{w}") for w in host.workers),
            timeout,
            0.5,
            f"host {host.name}'s workers",
        )


def runs_open(ids: list[int]) -> int | None:
    from django.db import DatabaseError, close_old_connections

    from workflows.models import RUN_TERMINAL, Run

    try:
        return Run.objects.filter(pk__in=ids).exclude(status__in=RUN_TERMINAL).count()
    except DatabaseError:
        close_old_connections()  # the failover: the next query connects to the promoted replica
        return None


def wait_ended(ids: list[int], timeout: float) -> None:
    try:
        wait_until(lambda: runs_open(ids) == 0, timeout, 0.5, f"{len(ids)} runs to end")
    except TimeoutError:  # say what holds them
        from workflows.models import StepRun

        for row in (
            StepRun.objects.filter(run_id__in=ids)
            .exclude(status="succeeded")
            .values_list("run_id", "path", "attempt", "status", "lease_expires_at")
        ):
            print("open step:", row, flush=True)
        for row in query(
            "SELECT client_addr, state, wait_event, xact_start, left(query, 100) FROM pg_stat_activity "
            "WHERE datname = current_database()"
        ):
            print("session:", row, flush=True)
        raise


def query(sql: str, params: list | None = None) -> list[tuple]:
    from django.db import DatabaseError, close_old_connections, connection

    for attempt in range(30):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params or [])
                return cursor.fetchall() if cursor.description else []
        except DatabaseError:
            close_old_connections()
            if attempt == 29:
                raise
            time.sleep(1)
    return []


def db_now() -> datetime:
    return query("SELECT clock_timestamp()")[0][0]


@dataclass
class Execution:
    run_id: int
    path: str
    attempt: int
    host: str
    started: datetime
    ended: datetime | None


def executions(ids: list[int]) -> list[Execution]:
    sql = "SELECT run_id, path, attempt, host, started, ended FROM cluster_execution WHERE run_id = ANY(%s) ORDER BY id"
    return [Execution(*row) for row in query(sql, [ids])]


def max_overlap(rows: list[Execution]) -> int:
    """The most step bodies running at once (from their own start and end stamps)."""
    edges = sorted([(r.started, 1) for r in rows] + [(r.ended, -1) for r in rows if r.ended], key=lambda e: e[:2])
    most = now = 0
    for _, delta in edges:  # at equal times the end (-1) sorts first: touching intervals do not overlap
        now += delta
        most = max(most, now)
    return most


def check(ids: list[int], rows: list[Execution], expected: Any) -> dict[str, Any]:
    """Outcome of ``ids``: wrong or unfinished runs, journal gaps, double transitions, attempts run twice."""
    from tests import invariants
    from workflows.models import Run

    runs = list(Run.objects.filter(pk__in=ids).values_list("pk", "status", "input", "output"))
    wrong = [
        pk
        for pk, status, data, out in runs
        if status != "succeeded" or (out or {}).get("value") != expected(data["value"])
    ]
    journal = invariants.check(ids)
    attempts = Counter((r.run_id, r.path, r.attempt) for r in rows)
    paths = {(r.run_id, r.path) for r in rows}
    return {
        "runs": len(ids),
        "runs lost or wrong": len(wrong) + len(ids) - len(runs),
        "journal gaps": len(journal.gaps),
        "transitions applied twice": len(journal.doubles),
        "attempts executed twice": sum(1 for n in attempts.values() if n > 1),
        "executions": len(rows),
        "executions beyond one per step": len(rows) - len(paths),
        "problems": journal.problems() + ([f"runs not right: {wrong[:10]}"] if wrong else []),
    }
