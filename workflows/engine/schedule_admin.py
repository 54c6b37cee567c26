"""Changing stored schedules: create, edit, pause/resume and delete at runtime (the dashboard, the admin and the
API call these), and syncing the code-defined ones from ``Workflow(schedules=...)``.

Bad values raise ``InvalidInput`` (with pydantic-style ``errors``) and change nothing; editing or deleting a
code-defined schedule raises ``InvalidTransition`` (only pausing it is allowed: the code owns the rest).
A schedule created or resumed starts at its next due time after now: paused time is never caught up.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..definition import registry
from ..definition import schedule as cron
from ..exceptions import InvalidInput, InvalidTransition, WorkflowDefinitionError
from ..store.scheduling import Schedule
from ..store.workflow_rows import row_for

log = logging.getLogger(__name__)
FIELDS = ("name", "cron", "timezone", "input", "overlap", "catchup", "paused")


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", errors=[{"loc": [field], "msg": message, "type": "value_error"}])


def clean(workflow: str, values: dict[str, Any]) -> dict[str, Any]:
    """Checked values for a schedule of ``workflow`` (a registered workflow: its input type checks ``input``)."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"Unknown field(s) {', '.join(unknown)}: send {', '.join(FIELDS)}")
    flow = registry.get(workflow)  # UnknownWorkflow: its code is not deployed here
    out = dict(values)
    checks = {
        "cron": cron.check_cron,
        "timezone": lambda v: (cron.zone(v), v)[1],
        "overlap": lambda v: cron.check_choice(v, cron.OVERLAP, "overlap"),
        "catchup": lambda v: cron.check_choice(v, cron.CATCHUP, "catchup"),
    }
    for field, check in checks.items():
        if field in out:
            try:
                out[field] = check(out[field])
            except WorkflowDefinitionError as exc:
                raise _invalid(field, str(exc)) from None
    if "name" in out and not (isinstance(out["name"], str) and cron.NAME_RE.match(out["name"])):
        raise _invalid("name", "up to 100 letters, digits, '_', '.', '-', starting with a letter or digit")
    if "paused" in out and not isinstance(out["paused"], bool):
        raise _invalid("paused", "true or false")
    if "input" in out:
        try:
            flow.input.validate(out["input"], "schedule input")
        except InvalidInput as exc:
            raise InvalidInput(str(exc), errors=[{**e, "loc": ["input", *e["loc"]]} for e in exc.errors]) from None
    return out


def create(workflow: str, values: dict[str, Any], *, user: Any = None, now: datetime | None = None) -> Schedule:
    """A runtime schedule of ``workflow``; ``cron`` is required, ``name`` defaults to one derived like code's."""
    if "cron" not in values:
        raise _invalid("cron", "Field required")
    data = clean(workflow, values)
    definition = cron.Schedule(**{k: v for k, v in data.items() if k not in ("paused",)})
    data.setdefault("name", definition.key)
    data.update(timezone=definition.timezone, overlap=definition.overlap, catchup=definition.catchup)
    s = Schedule(workflow_id=row_for(registry.get(workflow)), source=Schedule.Source.RUNTIME, **data)
    s.created_by = user if user is not None and getattr(user, "is_authenticated", False) else None
    s.next_due = s.next_times(now or timezone.now(), 1)[0]
    try:
        with transaction.atomic():
            s.save()
    except IntegrityError:
        raise _invalid("name", f"workflow {workflow!r} has a schedule named {data['name']!r} already") from None
    return s


def update(s: Schedule, values: dict[str, Any], *, now: datetime | None = None) -> Schedule:
    """Change a runtime schedule; of a code-defined one only ``paused``. A new cron or zone restarts its clock."""
    if s.from_code and set(values) - {"paused"}:
        raise InvalidTransition(f"Schedule {s.name!r} is defined in code: change it there (it may only be paused)")
    data = clean(s.workflow.name, values)
    now = now or timezone.now()
    with transaction.atomic():
        locked = Schedule.objects.select_for_update().get(pk=s.pk)
        was_paused = locked.paused
        for field, value in data.items():
            setattr(locked, field, value)
        changed = {"cron", "timezone"} & set(data) or (data.get("paused") is False and was_paused)
        if changed:  # a new rhythm, or resumed: the next due time after now (what was paused is not caught up)
            locked.next_due = locked.next_times(now, 1)[0]
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError:
            raise _invalid("name", f"this workflow has a schedule named {data['name']!r} already") from None
    return locked


def set_paused(s: Schedule, paused: bool, *, now: datetime | None = None) -> Schedule:
    return update(s, {"paused": paused}, now=now)


def delete(s: Schedule) -> None:
    if s.from_code:
        raise InvalidTransition(f"Schedule {s.name!r} is defined in code: remove it there (or pause it)")
    s.delete()


def sync_code(*, now: datetime | None = None, prune_unregistered: bool = True) -> dict[str, int]:
    """Bring the code-defined schedules in the database in line with the registered workflows: create the new,
    update the changed (a new cron or zone restarts the clock; ``paused`` stays as set from the UI), delete those
    no longer in the code (and, with ``prune_unregistered``, those of workflows no longer registered at all)."""
    now = now or timezone.now()
    counts = {"created": 0, "updated": 0, "deleted": 0}
    flows = registry.all_workflows()
    for flow in flows:
        wanted = {d.key: d for d in flow.schedules}
        if not wanted and not Schedule.objects.filter(workflow__name=flow.name, source=Schedule.Source.CODE).exists():
            continue  # nothing to do, and no row to create for a workflow without schedules
        workflow_id = row_for(flow)
        try:
            with transaction.atomic():
                rows = {s.name: s for s in Schedule.objects.select_for_update().filter(workflow_id=workflow_id)}
                for key, d in wanted.items():
                    _sync_one(rows.get(key), d, workflow_id, now, counts)
                gone = [s.pk for s in rows.values() if s.from_code and s.name not in wanted]
                counts["deleted"] += Schedule.objects.filter(pk__in=gone).delete()[1].get(Schedule._meta.label, 0)
        except IntegrityError:  # another process starting at the same time created the same row: it synced them
            log.info("code-defined schedules of %s: synced by another process meanwhile", flow.name)
    if prune_unregistered:
        stale = Schedule.objects.filter(source=Schedule.Source.CODE).exclude(workflow__name__in=[f.name for f in flows])
        counts["deleted"] += stale.delete()[1].get(Schedule._meta.label, 0)
    return counts


def _sync_one(row: Schedule | None, d: cron.Schedule, workflow_id: int, now: datetime, counts: dict) -> None:
    values = {"cron": d.cron, "timezone": d.timezone, "input": d.input, "overlap": d.overlap, "catchup": d.catchup}
    if row is None:
        s = Schedule(workflow_id=workflow_id, name=d.key, source=Schedule.Source.CODE, **values)
        s.next_due = s.next_times(now, 1)[0]
        s.save()
        counts["created"] += 1
        return
    if not row.from_code:
        log.warning("schedule %s: a runtime schedule has the name of a code-defined one; left as it is", row)
        return
    if row.as_definition() == values:
        return
    restart = (row.cron, row.timezone) != (d.cron, d.timezone)
    for field, value in values.items():
        setattr(row, field, value)
    if restart:
        row.next_due = row.next_times(now, 1)[0]
    row.save()
    counts["updated"] += 1
