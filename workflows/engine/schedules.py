"""Firing due schedules (called by the recovery loop's tick, with an injectable ``now`` for tests).

Each due time fires exactly once, whatever the number of recovery loops or machines, by three guards:

1. the schedule's row is moved forward by a compare-and-set on ``next_due`` (on PostgreSQL after ``FOR UPDATE
   SKIP LOCKED``: a copy skips a schedule another copy is firing); a copy whose update finds ``next_due``
   changed fires nothing;
2. a ``ScheduleFire`` row per (schedule, due time), unique, is inserted before the run is created;
3. the run's idempotency key is the due time, in the scope ``schedule:<id>`` (a user's scope is their pk).

All of it is one transaction: a crash before the commit leaves the due time to the next tick, never half-fired.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from cronsim import CronSimError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import conf
from ..definition import registry
from ..definition import schedule as cron
from ..exceptions import InvalidInput, InvalidTransition, UnknownWorkflow, WorkflowDefinitionError
from ..store.scheduling import Schedule, ScheduleFire
from ..store.workflow_rows import row_for
from .actions import cancel
from .advance import create_run, validated_input
from .inputs import storable

log = logging.getLogger(__name__)
BATCH = 100
KEEP_FIRES = 200  # ScheduleFire rows kept per schedule (the newest): the page shows the last ones


def due_times(s: Schedule, now: datetime) -> list[datetime]:
    """The due times of ``s`` to fire at ``now``, oldest first, by its ``catchup`` policy. A due time at most
    ``SCHEDULE_GRACE_SECONDS`` old is on time and fires under every policy; older ones were missed."""
    if s.next_due is None or s.next_due > now:
        return []
    if s.catchup == Schedule.Catchup.ALL:
        return cron.times_between(s.cron, s.timezone, s.next_due, now, int(conf.get("SCHEDULE_CATCHUP_MAX")))
    if s.catchup == Schedule.Catchup.NONE:
        on_time = now - timedelta(seconds=float(conf.get("SCHEDULE_GRACE_SECONDS")))
        return cron.times_between(s.cron, s.timezone, max(s.next_due, on_time), now, 1)
    return cron.times_between(s.cron, s.timezone, s.next_due, now, 1)  # latest


def fire_due(now: datetime | None = None) -> int:
    """Fire the due schedules of the workflows registered in this process; the number of runs started."""
    now = now or timezone.now()
    names = [f.name for f in registry.all_workflows()]  # a process without the code leaves them to one with it
    ids = list(
        Schedule.objects.filter(paused=False, next_due__lte=now, workflow__name__in=names)
        .order_by("next_due")
        .values_list("pk", flat=True)[:BATCH]
    )
    started = 0
    for pk in ids:
        try:
            started += fire_one(pk, now)
        except (WorkflowDefinitionError, CronSimError, ValueError) as exc:  # a row changed by hand: not the others'
            log.error("schedule %s cannot fire: %s (fix its cron or time zone)", pk, exc)
    return started


def fire_one(pk: int, now: datetime) -> int:
    with transaction.atomic():
        rows = Schedule.objects.select_related("workflow").filter(pk=pk, paused=False, next_due__lte=now)
        if transaction.get_connection().features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        s = rows.first()
        if s is None:
            return 0
        try:
            flow = registry.get(s.workflow.name)
        except UnknownWorkflow:
            return 0
        due = due_times(s, now)
        moved = Schedule.objects.filter(pk=pk, next_due=s.next_due, paused=False).update(
            next_due=cron.times_after(s.cron, s.timezone, now)[0], last_due=due[-1] if due else s.last_due
        )
        if not moved:  # another loop handled these due times between our read and our update
            return 0
        if not due or due[0] != s.next_due:
            log.info(
                "schedule %s: due since %s, firing %d (catchup=%s)", s, s.next_due.isoformat(), len(due), s.catchup
            )
        return sum(_fire(s, flow, at) for at in due)


def _fire(s: Schedule, flow, due: datetime) -> int:
    try:
        with transaction.atomic():  # a savepoint: a due time already recorded (guard 2) rolls back alone
            fire = ScheduleFire.objects.create(schedule=s, due_at=due, outcome=ScheduleFire.Outcome.STARTED)
    except IntegrityError:
        return 0
    active = list(s.active_runs().order_by("pk").values_list("pk", flat=True))
    if active and s.overlap == Schedule.Overlap.SKIP:
        return _record(fire, ScheduleFire.Outcome.SKIPPED, f"run {active[-1]} of this schedule is still active")
    if active and s.overlap == Schedule.Overlap.CANCEL_PREVIOUS:
        for run_id in active:
            try:
                cancel(run_id)
            except InvalidTransition:  # it ended meanwhile
                pass
    try:
        with transaction.atomic():
            run = create_run(
                flow,
                storable(validated_input(flow, s.input), "schedule input"),
                owner_id=s.created_by_id,
                idempotency_key=due.isoformat(),
                idempotency_scope=s.run_scope,
                workflow_id=row_for(flow),
            )
    except InvalidInput as exc:  # the workflow's input type changed under a stored schedule
        return _record(fire, ScheduleFire.Outcome.FAILED, str(exc)[:500])
    except IntegrityError:  # guard 3: the run for this due time exists already
        return _record(fire, ScheduleFire.Outcome.SKIPPED, "a run for this due time exists already")
    fire.run = run
    fire.save(update_fields=["run"])
    _prune(s)
    return 1


def _record(fire: ScheduleFire, outcome: str, detail: str) -> int:
    log.info("schedule %s, due %s: %s (%s)", fire.schedule, fire.due_at.isoformat(), outcome, detail)
    fire.outcome, fire.detail = outcome, detail
    fire.save(update_fields=["outcome", "detail"])
    _prune(fire.schedule)
    return 0


def _prune(s: Schedule) -> None:
    old = list(s.fires.order_by("-due_at").values_list("pk", flat=True)[KEEP_FIRES : KEEP_FIRES + 50])
    if old:
        ScheduleFire.objects.filter(pk__in=old).delete()
