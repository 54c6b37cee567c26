"""Schedules over HTTP: what the pages and the API (``web.api.schedules``) show of a schedule, and who may change
it. Changes go through ``engine.schedule_admin`` (the service functions the dashboard, the admin and the API use).

Every logged-in user who can see the workflow reads its schedules (the last runs listed are only those the user
may see); changing them takes staff or the ``workflows.change_schedule`` permission (else 403).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from ..store.models import Run
from ..store.scheduling import Schedule, ScheduleFire

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
