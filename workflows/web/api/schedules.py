"""``/api/workflows/<name>/schedules/`` and ``/api/schedules/<id>/``: a workflow's cron schedules, creating,
editing, pausing, resuming and deleting them, thin over ``engine.schedule_admin`` (which the dashboard and the
admin use too: the same checks, the same refusals).

Every user reads the schedules (the last runs listed are only those the user may see); changing them takes staff
or ``workflows.change_schedule`` (else ``403``). A code-defined schedule may only be paused or resumed: editing or
deleting it is a ``409``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Status
from pydantic import BaseModel

from ...engine import schedule_admin
from ...store.scheduling import Schedule
from .. import queries, schedules, services
from . import schemas as s

router = Router(tags=["schedules"])


class ScheduleIn(s.Strict):
    """A schedule's fields; on create ``cron`` is required, the others have defaults. On edit, send only what
    changes (a code-defined schedule: only ``paused``)."""

    cron: str = Field(None, description='five fields, e.g. "0 3 * * *"')
    input: Any = Field(None, description="the workflow's input for each run, checked against its input_schema")
    timezone: str = Field(None, description='an IANA zone, e.g. "Europe/Lisbon" (default: UTC)')
    overlap: str = Field(None, description="skip (default), allow or cancel_previous (last run still active)")
    catchup: str = Field(None, description="latest (default), all or none: due times missed while down")
    name: str = Field(None, description="unique per workflow; default derived from the cron and input")
    paused: bool = Field(None)


class ScheduleUrls(BaseModel):
    api: str
    page: str


class FireOut(BaseModel):
    due_at: str = Field(description="ISO datetime, in the schedule's zone")
    due: str
    outcome: str
    detail: str
    run: int | None = Field(description="the run it started, when you may see it")
    status: s.RunStatusName | None


class ScheduleOut(BaseModel):
    id: int
    workflow: str
    name: str
    cron: str
    timezone: str
    input: Any
    overlap: str
    catchup: str
    paused: bool
    source: str = Field(description="code (Workflow(schedules=...)) or runtime")
    editable: bool = Field(description="false for a code-defined schedule: only paused can change")
    next_due: dt.datetime | None
    next_times: list[str] = Field(description="the next five due times, in its zone (none while paused)")
    last_fires: list[FireOut]
    urls: ScheduleUrls


class ScheduleListOut(BaseModel):
    schedules: list[ScheduleOut]


CHANGE = {200: ScheduleOut, 409: s.ErrorOut, **s.ERRORS}


def schedule_json(sc: Schedule, user: Any) -> dict[str, Any]:
    fires = schedules.with_statuses(schedules.last_fires(sc, user, limit=20))
    return {
        "id": sc.pk,
        "workflow": sc.workflow.name,
        "name": sc.name,
        "cron": sc.cron,
        "timezone": sc.timezone,
        "input": sc.input,
        "overlap": sc.overlap,
        "catchup": sc.catchup,
        "paused": sc.paused,
        "source": sc.source,
        "editable": not sc.from_code,
        "next_due": sc.next_due,
        "next_times": [t.isoformat() for t in schedules.next_times(sc)],
        "last_fires": [{**f, "due_at": f["due_at"].isoformat()} for f in fires],
        "urls": {
            "api": reverse("workflows:api-schedule", args=[sc.pk]),
            "page": reverse("workflows:schedule", args=[sc.pk]),
        },
    }


def _writer(request: HttpRequest) -> None:
    if not schedules.can_change_schedules(request.user):
        raise services.ServiceError(403, "Changing schedules takes staff or the workflows.change_schedule permission")


def _schedule(schedule_id: int) -> Schedule:
    sc = None
    if 0 < schedule_id <= services.MAX_ID:
        sc = Schedule.objects.select_related("workflow").filter(pk=schedule_id).first()
    if sc is None:
        raise services.ServiceError(404, f"No schedule {schedule_id}")
    return sc


def _workflow(name: str) -> None:
    if "\x00" in name or queries.workflow_info(name) is None:
        raise services.ServiceError(404, f"No workflow named {name!r}")


@router.get(
    "/workflows/{name}/schedules/", response={200: ScheduleListOut, **s.ERRORS}, url_name="api-workflow-schedules"
)
def workflow_schedules(request: HttpRequest, name: str):
    """The workflow's schedules, each with its next due times and last fires."""
    _workflow(name)
    return {"schedules": [schedule_json(sc, request.user) for sc in schedules.schedules_of(name)]}


@router.post("/workflows/{name}/schedules/", response={201: ScheduleOut, 409: s.ErrorOut, **s.ERRORS})
def schedule_create(request: HttpRequest, name: str, payload: ScheduleIn):
    """Create a runtime schedule: ``201``; ``400`` for a bad value (nothing created)."""
    _workflow(name)
    _writer(request)
    sc = schedule_admin.create(name, payload.model_dump(exclude_unset=True), user=request.user)
    return Status(201, schedule_json(sc, request.user))


@router.get("/schedules/{int:schedule_id}/", response={200: ScheduleOut, **s.ERRORS}, url_name="api-schedule")
def schedule(request: HttpRequest, schedule_id: int):
    return schedule_json(_schedule(schedule_id), request.user)


@router.patch("/schedules/{int:schedule_id}/", response=CHANGE)
def schedule_update(request: HttpRequest, schedule_id: int, payload: ScheduleIn):
    """Change the fields sent; a new cron or zone restarts its clock. A code-defined schedule: only ``paused``."""
    sc = _schedule(schedule_id)
    _writer(request)
    return schedule_json(schedule_admin.update(sc, payload.model_dump(exclude_unset=True)), request.user)


@router.delete("/schedules/{int:schedule_id}/", response={204: None, 409: s.ErrorOut, **s.ERRORS})
def schedule_delete(request: HttpRequest, schedule_id: int):
    """Delete a runtime schedule: ``204``; a code-defined one: ``409`` (remove it from the code, or pause it)."""
    sc = _schedule(schedule_id)
    _writer(request)
    schedule_admin.delete(sc)
    return Status(204, None)


@router.post("/schedules/{int:schedule_id}/pause/", response=CHANGE, url_name="api-schedule-pause")
def schedule_pause(request: HttpRequest, schedule_id: int):
    _writer(request)
    return schedule_json(schedule_admin.set_paused(_schedule(schedule_id), True), request.user)


@router.post("/schedules/{int:schedule_id}/resume/", response=CHANGE, url_name="api-schedule-resume")
def schedule_resume(request: HttpRequest, schedule_id: int):
    """Resume: its next due time after now (what came due while paused is not caught up)."""
    _writer(request)
    return schedule_json(schedule_admin.set_paused(_schedule(schedule_id), False), request.user)
