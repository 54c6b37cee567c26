"""Schedules fired by real recovery-loop processes: three loops started at once over the same missed due times
start one run per due time, with no gap, and the runs complete on a real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from workflows.definition import schedule as cron
from workflows.engine import schedule_admin
from workflows.models import Run, RunStatus

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_three_recovery_processes_fire_each_due_time_once(live):
    start = timezone.now() - timedelta(minutes=6)
    s = schedule_admin.create(
        "counter",
        {"cron": "* * * * *", "input": {"value": 1}, "overlap": "allow", "catchup": "all"},
        now=start,
    )
    first_due = s.next_due
    loops = [live.recovery() for _ in range(3)]
    live.worker()

    def caught_up():
        s.refresh_from_db()
        return s.last_due is not None and s.last_due >= first_due + timedelta(minutes=5)

    wait_for(caught_up, 60, what="the missed due times fired")
    due = cron.times_between(s.cron, s.timezone, first_due, s.last_due, 100)
    fired = sorted(s.fires.values_list("due_at", flat=True))
    assert fired == due and len(due) >= 6  # every missed minute (at most SCHEDULE_CATCHUP_MAX=10), no gap
    assert set(s.fires.values_list("outcome", flat=True)) == {"started"}
    keys = list(Run.objects.filter(idempotency_scope=s.run_scope).values_list("idempotency_key", flat=True))
    assert sorted(keys) == [d.isoformat() for d in due]  # one run per due time
    wait_for(
        lambda: not Run.objects.filter(idempotency_scope=s.run_scope).exclude(status=RunStatus.SUCCEEDED).exists(),
        90,
        what="the scheduled runs finished",
    )
    for proc in loops:
        assert "tick failed" not in proc.output() and "Traceback" not in proc.output(), proc.output()
