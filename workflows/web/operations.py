"""What the operations page, its API endpoint (``api/operations/``) and the CLI show: one snapshot of the pools,
the RQ queues, the workers and recovery loops alive (their heartbeats, ``runtime.heartbeats``), the schedules'
next fires and the workflow versions with runs in flight.

Seeing it takes staff or ``workflows.view_all_runs`` (it counts every user's runs and names hosts); changing a
pool from it still takes what the pools page asks (``pools.can_control``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Count, Min
from redis.exceptions import RedisError

from ..engine import dispatch, pool_control
from ..runtime import heartbeats
from ..store.models import Run, StepRun, Workflow
from ..store.scheduling import Schedule

log = logging.getLogger(__name__)


def can_view(user: Any) -> bool:
    return bool(user.is_authenticated and (user.is_staff or user.has_perm("workflows.view_all_runs")))


def snapshot() -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values. ``redis_error`` is set (and queues and processes are
    empty) while Redis cannot be reached: the database's half is still shown."""
    data: dict[str, Any] = {"redis_error": None, "queues": [], "workers": [], "recovery": []}
    try:
        data["queues"] = dispatch.queue_stats()
        beats = heartbeats.read()
    except RedisError as exc:
        log.warning("operations: Redis unreachable: %s", exc)
        data["redis_error"] = "Redis cannot be reached: queues, workers and recovery loops are unknown."
        beats = []
    data["workers"] = _workers([b for b in beats if b.kind == "worker"])
    data["recovery"] = [b.as_json() for b in beats if b.kind == "recovery"]
    data["pools"] = [state.as_json() for state in pool_control.states()]
    data["schedules"] = _schedules()
    data["versions"] = _versions()
    return data


def _workers(beats: list[heartbeats.Heartbeat]) -> list[dict[str, Any]]:
    """Each worker's beat with the step it runs (workflow, run, path), read here: the beat carries only an id."""
    ids = [b.state.get("step_run_id") for b in beats if b.alive and b.state.get("step_run_id")]
    steps = {
        row["pk"]: row
        for row in StepRun.objects.filter(pk__in=ids).values("pk", "run_id", "path", "attempt", "run__workflow__name")
    }
    out = []
    for beat in beats:
        row = beat.as_json()
        step = steps.get(row.get("step_run_id")) if beat.alive else None
        row["step"] = (
            {"run": step["run_id"], "path": step["path"], "attempt": step["attempt"],
             "workflow": step["run__workflow__name"]} if step else None
        )  # fmt: skip
        out.append(row)
    return out


def _schedules() -> list[dict[str, Any]]:
    rows = Schedule.objects.select_related("workflow").order_by("next_due", "workflow__name", "name")
    return [
        {"id": s.pk, "workflow": s.workflow.name, "name": s.name, "cron": s.cron, "timezone": s.timezone,
         "paused": s.paused, "next_due": None if s.paused else s.next_due, "last_due": s.last_due}
        for s in rows
    ]  # fmt: skip


def _versions() -> list[dict[str, Any]]:
    """Each (workflow, version) with runs not finished, and whether it is the version the code defines now: an old
    version with runs in flight must stay deployable until they end (see the README's deploy rules)."""
    current = dict(Workflow.objects.values_list("name", "version"))
    rows = (
        Run.objects.active()
        .values("workflow__name", "version")
        .annotate(runs=Count("pk"), oldest=Min("created_at"))
        .order_by("workflow__name", "version")
    )
    return [
        {"workflow": r["workflow__name"], "version": r["version"], "runs": r["runs"], "oldest": r["oldest"],
         "current": current.get(r["workflow__name"]) == r["version"]}
        for r in rows
    ]  # fmt: skip
