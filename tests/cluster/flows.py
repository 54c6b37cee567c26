"""Workflows of the multi-host test. Every step records each execution of its body in ``cluster_execution`` (a
table the harness creates; autocommit, so the row survives its process dying): run, path, attempt, the host
(``CLUSTER_HOST``) and the database clock when the body started and ended, from which the harness reads which
host ran what, the pool's overlap, and the takeover time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from django.db import connection
from pydantic import BaseModel

from workflows import StepContext, Workflow, step

RETRIES = 8  # room for lost workers, a Redis restart and a PostgreSQL failover


class Job(BaseModel):
    value: int
    pause: float = 0.0


def record(ctx: StepContext, data: Job) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO cluster_execution (run_id, path, attempt, host, pid) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            [ctx.run_id, ctx.path, ctx.attempt, os.environ.get("CLUSTER_HOST", "?"), os.getpid()],
        )
        row = cursor.fetchone()[0]
    time.sleep(data.pause)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cluster_execution SET ended = clock_timestamp() WHERE id = %s", [row])


def _step(name: str, pool: str | None, fn: Callable[[int], int]):
    def body(ctx: StepContext, data: Job) -> Job:
        record(ctx, data)
        return Job(value=fn(data.value), pause=data.pause)

    return step(body, id=name, pool=pool, retries=RETRIES, backoff=0.2)


def _chain(name: str, pool: str | None, count: int) -> Workflow:
    flow = Workflow(name, input=Job, output=Job)
    for i in range(count):
        flow = flow.then(_step(f"{name.replace('-', '_')}_{i}", pool, lambda v: v * 2 + 1))
    return flow.commit()


STEPS = 3
pooled = _chain("cluster-pool", "cluster", STEPS)  # scenario 1: at most 3 at once, on both hosts
on_a = _chain("cluster-on-a", "on_a", STEPS)  # scenario 2 and host A's rejoining: host A's workers only
plain = _chain("cluster-plain", None, STEPS)  # scenarios 3 and 4: the default pool, on both hosts


def expected(value: int) -> int:
    for _ in range(STEPS):
        value = value * 2 + 1
    return value
