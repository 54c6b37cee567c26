"""``/api/operations/``: what the operations page shows (``web.operations.snapshot``), for scripts and the CLI:
pools, RQ queues, workers and recovery loops with their heartbeats, schedules' next fires, versions with runs in
flight. Staff or ``workflows.view_all_runs`` only (else ``403``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router
from pydantic import BaseModel

from .. import operations, services
from . import schemas as s

router = Router(tags=["operations"])


class OpsQueueOut(BaseModel):
    name: str
    queued: int = Field(description="jobs waiting for a worker")
    started: int = Field(description="jobs a worker has taken")
    failed: int = Field(description="jobs RQ keeps as failed (a day)")


class OpsProcessOut(BaseModel):
    """A worker's or recovery loop's last heartbeat; the rest of its fields depend on its kind."""

    model_config = {"extra": "allow"}
    kind: str
    host: str
    pid: int
    started: float = Field(description="epoch seconds, Redis' clock")
    last_beat: float = Field(description="epoch seconds, Redis' clock")
    age: float = Field(description="seconds since the last beat")
    alive: bool = Field(description="false: it missed its beats (gone); shown for ten minutes, then forgotten")


class OpsScheduleOut(BaseModel):
    id: int
    workflow: str
    name: str
    cron: str
    timezone: str
    paused: bool
    next_due: dt.datetime | None
    last_due: dt.datetime | None


class OpsVersionOut(BaseModel):
    workflow: str
    version: str
    runs: int = Field(description="runs not finished")
    oldest: dt.datetime
    current: bool = Field(description="the version the code defines now")


class OperationsOut(BaseModel):
    redis_error: str | None
    pools: list[dict[str, Any]]
    queues: list[OpsQueueOut]
    workers: list[OpsProcessOut]
    recovery: list[OpsProcessOut]
    schedules: list[OpsScheduleOut]
    versions: list[OpsVersionOut]


@router.get("/operations/", response={200: OperationsOut, **s.ERRORS}, url_name="api-operations")
def operations_snapshot(request: HttpRequest):
    """Everything the operations page shows, as of now."""
    if not operations.can_view(request.user):
        raise services.ServiceError(403, "The operations view needs staff or the workflows.view_all_runs permission")
    return operations.snapshot()
