"""Schedules: definition checks, firing by the recovery tick with an injected clock (exactly once, catch-up,
overlap, daylight-saving changes) and the sync of code-defined schedules. Runs are real (real database)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import override_settings

from tests.testapp import flows
from workflows import InvalidTransition, Schedule, Workflow, WorkflowDefinitionError
from workflows.definition import registry
from workflows.engine import schedule_admin
from workflows.models import Run, RunStatus
from workflows.runtime import recovery
from workflows.store.scheduling import Schedule as ScheduleRow
from workflows.store.scheduling import ScheduleFire

pytestmark = pytest.mark.usefixtures("engine_db")
LISBON = ZoneInfo("Europe/Lisbon")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make(cron: str = "0 * * * *", now: datetime = utc(2026, 1, 1, 0, 0, 30), **values) -> ScheduleRow:
    return schedule_admin.create("counter", {"cron": cron, "input": {"value": 1}, **values}, now=now)


def fired(s: ScheduleRow) -> list[datetime]:
    return list(s.fires.filter(outcome="started").order_by("due_at").values_list("due_at", flat=True))


# --- definition --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cron": "61 * * * *"},
        {"cron": "* * * *"},
        {"cron": "not a cron"},
        {"cron": ""},
        {"cron": 5},
        {"cron": "0 3 * * *", "timezone": "Mars/Olympus"},
        {"cron": "0 3 * * *", "timezone": "../etc/passwd"},
        {"cron": "0 3 * * *", "overlap": "queue"},
        {"cron": "0 3 * * *", "catchup": "some"},
        {"cron": "0 3 * * *", "name": "has space"},
        {"cron": "0 3 * * *", "input": object()},
    ],
)
def test_definition__bad_schedule_is_a_workflow_definition_error(kwargs):
    with pytest.raises(WorkflowDefinitionError):
        Schedule(**kwargs)


def test_definition__workflow_checks_its_schedules_input_and_names():
    with pytest.raises(WorkflowDefinitionError, match="input"):
        Workflow("sched-bad-input", input=flows.Num, schedules=[Schedule("0 3 * * *", input={"value": "x"})])
    with pytest.raises(WorkflowDefinitionError, match="two schedules"):
        Workflow("sched-dupe", schedules=[Schedule("0 3 * * *", name="a"), Schedule("0 4 * * *", name="a")])
    flow = Workflow("sched-ok", input=flows.Num, schedules=[Schedule("0 3 * * *", input={"value": 2})])
    assert flow.schedules[0].key.startswith("cron-")


def test_definition__next_times_in_the_schedules_zone():
    s = Schedule("0 3 * * *", timezone="Europe/Lisbon")
    times = s.next_times(utc(2026, 7, 1, 12), 5)
    assert [t.astimezone(LISBON).hour for t in times] == [3] * 5  # 03:00 Lisbon = 02:00 UTC in summer
    assert times[0] == utc(2026, 7, 2, 2)


# --- firing ------------------------------------------------------------------------------------------------------


def test_fire__each_due_time_once_and_the_run_records_it():
    s = make("*/10 * * * *")  # created at 00:00:30: next due 00:10
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 9, 59)) == 0
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 10, 1)) == 1
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 10, 2)) == 0  # same due time: never again
    fire = ScheduleFire.objects.get(schedule=s)
    run = fire.run
    assert fire.due_at == utc(2026, 1, 1, 0, 10) and run.input == {"value": 1}
    assert run.schedule_fire.schedule == s  # the run knows which schedule and due time started it
    assert (run.idempotency_scope, run.idempotency_key) == (f"schedule:{s.pk}", "2026-01-01T00:10:00+00:00")
    s.refresh_from_db()
    assert s.next_due == utc(2026, 1, 1, 0, 20) and s.last_due == utc(2026, 1, 1, 0, 10)


def test_fire__paused_schedule_does_not_fire_and_resuming_skips_the_paused_time():
    s = make("*/10 * * * *")
    schedule_admin.set_paused(s, True)
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 1, 0, 1)) == 0
    s = schedule_admin.set_paused(s, False, now=utc(2026, 1, 1, 1, 5))
    assert s.next_due == utc(2026, 1, 1, 1, 10)
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 1, 10, 1)) == 1
    assert fired(s) == [utc(2026, 1, 1, 1, 10)]


def test_fire__three_concurrent_loops_never_fire_a_due_time_twice():
    """Three threads (each its own database connection) tick together over the same 30 minutes of due times."""
    s = make("* * * * *", catchup="all", overlap="allow")
    clock = [utc(2026, 1, 1, 0, 1) + timedelta(seconds=20 * i) for i in range(90)]  # 00:01 .. 00:30:40
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def loop():
        try:
            for now in clock:
                barrier.wait(timeout=60)
                recovery.fire_schedules(now=now)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=loop) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    expected = [utc(2026, 1, 1, 0, m) for m in range(1, 31)]
    assert fired(s) == expected
    keys = list(Run.objects.filter(idempotency_scope=s.run_scope).values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 30


@override_settings(WORKFLOWS={"SCHEDULE_CATCHUP_MAX": 3, "SCHEDULE_GRACE_SECONDS": 60})
@pytest.mark.parametrize(
    "catchup, expected_minutes",
    [("none", []), ("latest", [50]), ("all", [30, 40, 50])],
)
def test_fire__stopped_system_catches_up_as_configured(catchup, expected_minutes):
    s = make("*/10 * * * *", catchup=catchup, overlap="allow")  # due 00:10, then the system is down until 00:55
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 55)) == len(expected_minutes)
    assert fired(s) == [utc(2026, 1, 1, 0, m) for m in expected_minutes]
    s.refresh_from_db()
    assert s.next_due == utc(2026, 1, 1, 1, 0)  # back on the rhythm, nothing missed fires later
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 1, 0, 5)) == 1  # on time: fires under every policy


@pytest.mark.parametrize(
    "days, expected_local",
    [
        # spring forward, Sunday 29 March 2026: 01:00 -> 02:00, so 01:30 does not exist: it fires at 02:00
        ((27, 28, 29, 30), ["01:30", "01:30", "02:00", "01:30"]),
        # fall back, Sunday 25 October 2026: 02:00 -> 01:00, so 01:30 happens twice: it fires once
        ((23, 24, 25, 26), ["01:30", "01:30", "01:30", "01:30"]),
    ],
)
def test_fire__dst_changes_a_daily_0130_in_lisbon_fires_once_a_day(days, expected_local):
    month = 3 if days[0] == 27 else 10
    start = datetime(2026, month, days[0] - 1, 12, tzinfo=LISBON)
    s = make("30 1 * * *", now=start, timezone="Europe/Lisbon", overlap="allow")
    now = start
    while now < datetime(2026, month, days[-1], 23, tzinfo=LISBON):  # a tick every 10 minutes for 5 days
        now += timedelta(minutes=10)
        recovery.fire_schedules(now=now)
    local = [t.astimezone(LISBON) for t in fired(s)]
    assert [t.day for t in local] == list(days)
    assert [t.strftime("%H:%M") for t in local] == expected_local


def test_overlap__skip_records_the_skipped_due_time():
    s = make("*/10 * * * *", overlap="skip")
    recovery.fire_schedules(now=utc(2026, 1, 1, 0, 10, 1))  # the run stays active: no worker drains it
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 20, 1)) == 0
    skipped = ScheduleFire.objects.get(schedule=s, due_at=utc(2026, 1, 1, 0, 20))
    assert skipped.outcome == "skipped" and skipped.run is None and "still active" in skipped.detail
    assert Run.objects.filter(idempotency_scope=s.run_scope).count() == 1


def test_overlap__allow_and_cancel_previous():
    allow = make("*/10 * * * *", overlap="allow", name="allow")
    cancel = make("*/10 * * * *", overlap="cancel_previous", name="cancel")
    recovery.fire_schedules(now=utc(2026, 1, 1, 0, 10, 1))
    recovery.fire_schedules(now=utc(2026, 1, 1, 0, 20, 1))
    allowed = Run.objects.filter(idempotency_scope=allow.run_scope).order_by("pk")
    assert allowed.count() == 2 and not allowed.filter(status=RunStatus.CANCELED).exists()
    first, second = Run.objects.filter(idempotency_scope=cancel.run_scope).order_by("pk")
    assert first.status == RunStatus.CANCELED and second.status not in (RunStatus.CANCELED, RunStatus.FAILED)


def test_fire__a_workflow_not_registered_here_is_left_to_a_process_that_has_it():
    flow = Workflow("sched-gone", input=flows.Num).then(flows.increment).commit()
    s = schedule_admin.create("sched-gone", {"cron": "*/10 * * * *", "input": {"value": 1}}, now=utc(2026, 1, 1))
    registry.unregister(flow)
    try:
        assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 10, 1)) == 0
        s.refresh_from_db()
        assert s.next_due == utc(2026, 1, 1, 0, 10)  # untouched: due still
    finally:
        registry.register(flow)


def test_fire__a_row_broken_by_hand_is_logged_and_the_others_still_fire():
    broken = make("*/10 * * * *", name="broken")
    fine = make("*/10 * * * *", name="fine")
    ScheduleRow.objects.filter(pk=broken.pk).update(timezone="Nowhere/City")
    assert recovery.fire_schedules(now=utc(2026, 1, 1, 0, 10, 1)) == 1
    assert fired(fine) == [utc(2026, 1, 1, 0, 10)] and fired(broken) == []


# --- code-defined schedules ----------------------------------------------------------------------------------------


def test_sync__code_schedules_created_updated_kept_paused_and_removed():
    flow = Workflow(
        "sched-code", input=flows.Num, schedules=[Schedule("0 3 * * *", input={"value": 1}, name="nightly")]
    )
    flow.then(flows.increment).commit()
    try:
        schedule_admin.sync_code(now=utc(2026, 1, 1))
        row = ScheduleRow.objects.get(workflow__name="sched-code")
        assert row.from_code and row.name == "nightly" and row.next_due == utc(2026, 1, 1, 3)
        schedule_admin.set_paused(row, True)  # the UI may pause a code-defined schedule, not edit or delete it
        with pytest.raises(InvalidTransition, match="defined in code"):
            schedule_admin.update(row, {"cron": "0 4 * * *"})
        with pytest.raises(InvalidTransition, match="defined in code"):
            schedule_admin.delete(row)
        flow.schedules = (Schedule("0 5 * * *", input={"value": 2}, name="nightly"),)  # the code changes
        assert schedule_admin.sync_code(now=utc(2026, 1, 1))["updated"] == 1
        row.refresh_from_db()
        assert (row.cron, row.input, row.paused, row.next_due) == ("0 5 * * *", {"value": 2}, True, utc(2026, 1, 1, 5))
        flow.schedules = ()
        assert schedule_admin.sync_code(now=utc(2026, 1, 1))["deleted"] == 1
        assert not ScheduleRow.objects.filter(workflow__name="sched-code").exists()
    finally:
        registry.unregister(flow)


def test_sync__loops_starting_together_create_each_code_schedule_once():
    flow = Workflow("sched-sync-race", input=flows.Num, schedules=[Schedule("0 3 * * *", input={"value": 1})])
    flow.then(flows.increment).commit()
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def start():
        try:
            barrier.wait(timeout=60)
            schedule_admin.sync_code(now=utc(2026, 1, 1), prune_unregistered=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=start) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert ScheduleRow.objects.filter(workflow__name="sched-sync-race").count() == 1
    finally:
        registry.unregister(flow)
