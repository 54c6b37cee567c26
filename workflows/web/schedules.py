"""Schedules over HTTP: what the pages and the API show of a schedule, who may change it, and the JSON API.

The API is thin over ``engine.schedule_admin`` (the service functions the dashboard and the admin use too):

- ``GET api/workflows/<name>/schedules/`` list · ``POST`` create ``{"cron", "input", "timezone", "overlap",
  "catchup", "name", "paused"}`` (201);
- ``GET api/schedules/<id>/`` · ``PATCH`` edit (a code-defined one: only ``paused``; else 409) · ``DELETE`` (204;
  a code-defined one: 409);
- ``POST api/schedules/<id>/pause/`` and ``.../resume/``.

Every logged-in user who can see the workflow reads its schedules (the last runs listed are only those the user
may see); changing them takes staff or the ``workflows.change_schedule`` permission (else 403).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone

from ..engine import schedule_admin
from ..store.models import Run
from ..store.scheduling import Schedule, ScheduleFire
from . import queries
from .endpoints import ApiError, endpoint
from .endpoints import body as _body

NEXT_TIMES = 5
LAST_FIRES = 5


def can_change_schedules(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_staff or user.has_perm("workflows.change_schedule")))


def schedules_of(workflow: str) -> list[Schedule]:
    return list(Schedule.objects.filter(workflow__name=workflow).select_related("workflow").order_by("name"))


def next_times(s: Schedule, now: datetime | None = None) -> list[datetime]:
    """The next five fire times, in the schedule's zone (none while paused)."""
    if s.paused:
        return []
    zone = ZoneInfo(s.timezone)
    return [t.astimezone(zone) for t in s.next_times(max(now or timezone.now(), _before(s.next_due)), NEXT_TIMES)]


def _before(moment: datetime | None) -> datetime:
    """Just before ``next_due``: a due time not fired yet (the loop is behind) is still listed as next."""
    return moment - timedelta(seconds=1) if moment else timezone.now()


def last_fires(s: Schedule, user: Any, limit: int = LAST_FIRES) -> list[dict[str, Any]]:
    """The schedule's last handled due times; the run only where the user may see it."""
    fires = list(s.fires.order_by("-due_at")[:limit])
    visible = set(
        Run.objects.visible_to(user).filter(pk__in=[f.run_id for f in fires if f.run_id]).values_list("pk", flat=True)
    )
    zone = ZoneInfo(s.timezone)
    return [
        {
            "due_at": f.due_at.astimezone(zone),
            "due": shown(f.due_at.astimezone(zone)),
            "outcome": f.outcome,
            "detail": f.detail,
            "run": f.run_id if f.run_id in visible else None,
            "status": None,
        }
        for f in fires
    ]


def with_statuses(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [r["run"] for r in rows if r["run"]]
    statuses = dict(Run.objects.filter(pk__in=ids).values_list("pk", "status"))
    for r in rows:
        r["status"] = statuses.get(r["run"])
    return rows


def shown(moment: datetime) -> str:
    """A time as the pages show it, in its own zone (templates would convert it to the site's zone)."""
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def page_rows(workflow: str, user: Any) -> list[dict[str, Any]]:
    """What the workflow page shows of each of its schedules."""
    return [
        {"schedule": s, "next": [shown(t) for t in next_times(s)], "fires": with_statuses(last_fires(s, user))}
        for s in schedules_of(workflow)
    ]


def fire_of(run: Run) -> ScheduleFire | None:
    """The schedule and due time that started this run, if one did (the run page says so)."""
    return ScheduleFire.objects.select_related("schedule").filter(run=run).first()


# --- the JSON API ----------------------------------------------------------------------------------------------


def schedule_json(s: Schedule, user: Any) -> dict[str, Any]:
    return {
        "id": s.pk,
        "workflow": s.workflow.name,
        "name": s.name,
        "cron": s.cron,
        "timezone": s.timezone,
        "input": s.input,
        "overlap": s.overlap,
        "catchup": s.catchup,
        "paused": s.paused,
        "source": s.source,
        "editable": not s.from_code,
        "next_due": s.next_due,
        "next_times": [t.isoformat() for t in next_times(s)],
        "last_fires": [{**f, "due_at": f["due_at"].isoformat()} for f in with_statuses(last_fires(s, user, limit=20))],
        "urls": {
            "api": reverse("workflows:api-schedule", args=[s.pk]),
            "page": reverse("workflows:schedule", args=[s.pk]),
        },
    }


def _writer(request: HttpRequest) -> None:
    if not can_change_schedules(request.user):
        raise ApiError(403, "Changing schedules takes staff or the workflows.change_schedule permission")


def _schedule(schedule_id: int) -> Schedule:
    s = Schedule.objects.select_related("workflow").filter(pk=schedule_id).first()
    if s is None:
        raise ApiError(404, f"No schedule {schedule_id}")
    return s


@endpoint("GET", "POST")
def workflow_schedules(request: HttpRequest, name: str) -> JsonResponse:
    if queries.workflow_info(name) is None:
        raise ApiError(404, f"No workflow named {name!r}")
    if request.method == "POST":
        _writer(request)
        s = schedule_admin.create(name, _body(request), user=request.user)
        return JsonResponse(schedule_json(s, request.user), status=201)
    return JsonResponse({"schedules": [schedule_json(s, request.user) for s in schedules_of(name)]})


@endpoint("GET", "PATCH", "DELETE")
def schedule(request: HttpRequest, schedule_id: int) -> HttpResponse:
    s = _schedule(schedule_id)
    if request.method == "PATCH":
        _writer(request)
        s = schedule_admin.update(s, _body(request))
    elif request.method == "DELETE":
        _writer(request)
        schedule_admin.delete(s)
        return HttpResponse(status=204)
    return JsonResponse(schedule_json(s, request.user))


@endpoint("POST")
def schedule_pause(request: HttpRequest, schedule_id: int) -> JsonResponse:
    _writer(request)
    return JsonResponse(schedule_json(schedule_admin.set_paused(_schedule(schedule_id), True), request.user))


@endpoint("POST")
def schedule_resume(request: HttpRequest, schedule_id: int) -> JsonResponse:
    _writer(request)
    return JsonResponse(schedule_json(schedule_admin.set_paused(_schedule(schedule_id), False), request.user))
