"""Process heartbeats (runtime.heartbeats: beats, expiry, the recovery loop's record) and the operations page and
its API (web.operations)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.testapp import flows
from workflows.devserver import redis_server
from workflows.engine import pool_control, schedule_admin
from workflows.models import StepRun
from workflows.runtime import dispatch, heartbeats

pytestmark = pytest.mark.usefixtures("engine_db")


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True))
    return client


def stale(field: str, seconds: float, **fields) -> None:
    """A beat written ``seconds`` ago (Redis' clock): what a process that died then leaves behind."""
    client = heartbeats.connection()
    at = heartbeats._redis_now(client) - seconds
    body = {"kind": "worker", "host": "h", "pid": 7, "started": at - 60, "at": at, "state": {}, **fields}
    client.hset(heartbeats.KEY, field, json.dumps(body))


# --- heartbeats -------------------------------------------------------------------------------------------------


def test_a_beat_is_read_back_alive_and_a_clean_stop_removes_it():
    beater = heartbeats.Beater("worker", lambda: {"name": "w1", "step_run_id": None})
    beater.beat()
    (beat,) = heartbeats.read()
    assert (beat.kind, beat.pid, beat.alive, beat.state["name"]) == ("worker", beater.pid, True, "w1")
    assert beat.age < 60
    beater.stop()
    assert heartbeats.read() == []


def test_the_thread_beats_again_every_period():
    with override_settings(WORKFLOWS={**_workflows(), "PROCESS_HEARTBEAT_SECONDS": 0.05}):
        seen = []
        with heartbeats.beating("recovery", lambda: {"n": len(seen)}):
            while len({b.last_beat for b in seen}) < 3:
                seen.extend(heartbeats.read("recovery"))
        assert heartbeats.read() == []


def test_a_process_that_stops_beating_is_gone_then_forgotten():
    stale("worker:h:7", 3 * heartbeats.period() + 1)
    stale("worker:h:8", heartbeats.FORGET_AFTER + 5, pid=8)
    heartbeats.connection().hset(heartbeats.KEY, "worker:h:9", "not json")
    (beat,) = heartbeats.read()
    assert (beat.pid, beat.alive) == (7, False)
    assert set(heartbeats.connection().hkeys(heartbeats.KEY)) == {b"worker:h:7"}  # forgotten ones are deleted


def test_a_slow_beat_within_the_missed_beats_is_still_alive():
    stale("worker:h:7", 2 * heartbeats.period())
    assert heartbeats.read()[0].alive


def test_the_recovery_loops_record_keeps_last_actions_totals_and_failures():
    record = heartbeats.TickRecord()
    record.ticked({"expired": 1, "scheduled": 0})
    record.ticked({"expired": 0, "scheduled": 2})
    state = record.state()
    assert state["last_actions"] == {"expired": 0, "scheduled": 2}
    assert state["totals"] == {"expired": 1, "scheduled": 2}
    assert state["failing_for"] is None and state["last_tick_ago"] < 60
    record.failed(ConnectionError("down"))
    assert record.state()["failing_for"] is not None and record.state()["error"] == "ConnectionError"


def test_ages_read_back_count_from_now():
    stale("recovery:h:7", 10, kind="recovery", state={"last_tick_ago": 1.0})
    assert heartbeats.read()[0].state["last_tick_ago"] == pytest.approx(11, abs=2)


def _workflows():
    from django.conf import settings

    return settings.WORKFLOWS


# --- the page and the API ---------------------------------------------------------------------------------------


def test_page_shows_workers_with_their_step_loops_schedules_versions_and_pools(staff):
    run = flows.counter.start({"value": 1})
    step = StepRun.objects.get(run=run)
    heartbeats.Beater("worker", lambda: {"name": "w1", "step_run_id": step.pk}).beat()
    record = heartbeats.TickRecord()
    record.ticked({"expired": 3, "scheduled": 1})
    heartbeats.Beater("recovery", record.state).beat()
    stale("worker:gonehost:7", 60, host="gonehost")
    schedule_admin.create("counter", {"cron": "0 3 * * *", "input": {"value": 1}, "name": "nightly"})
    pool_control.pause("single")

    page = staff.get(reverse("workflows:operations"))
    html = page.content.decode()
    assert page.status_code == 200
    workers = html.split('id="workers"')[1].split("</table>")[0]
    assert f"counter #{run.pk}" in workers and step.path in workers and 'data-alive="true"' in workers
    assert 'data-host="gonehost"' in workers and "gone" in workers
    recovery = html.split('id="recovery"')[1].split("</table>")[0]
    assert "expired 3" in recovery and "scheduled 1" in recovery
    assert "nightly" in html.split('id="ops-schedule-table"')[1]
    versions = html.split('id="versions"')[1].split("</table>")[0]
    assert 'data-workflow="counter"' in versions and "current" in versions
    assert 'data-pool="single"' in html and 'name="next" value="operations"' in html  # the pools' own controls
    assert 'href="/operations/" aria-current="page"' in html  # in the nav


def test_live_part_is_the_sections_without_the_layout(staff):
    part = staff.get(reverse("workflows:operations") + "?part=live")
    assert part.status_code == 200 and b'id="workers"' in part.content and b"<html" not in part.content


def test_pool_controls_on_the_page_come_back_to_it(staff):
    response = staff.post(reverse("workflows:pools"), {"pool": "single", "action": "pause", "next": "operations"})
    assert response.status_code == 302 and response["Location"] == reverse("workflows:operations")
    assert pool_control.state("single").paused


def test_page_and_api_are_for_staff_or_view_all_runs(client, user):
    client.force_login(user)
    assert client.get(reverse("workflows:operations")).status_code == 403
    assert client.get(reverse("workflows:api-operations")).status_code == 403
    assert b"Operations</a>" not in client.get(reverse("workflows:home")).content
    client.logout()
    assert client.get(reverse("workflows:api-operations")).status_code == 401


def test_api_gives_the_same_snapshot(staff):
    flows.counter.start({"value": 1})
    heartbeats.Beater("worker", lambda: {"name": "w1", "step_run_id": None}).beat()
    body = staff.get(reverse("workflows:api-operations")).json()
    assert body["redis_error"] is None
    assert [w["name"] for w in body["workers"]] == ["w1"] and body["workers"][0]["alive"] is True
    assert {q["name"] for q in body["queues"]} >= {"default"}
    assert [(v["workflow"], v["runs"]) for v in body["versions"]] == [("counter", 1)]
    assert {p["name"] for p in body["pools"]} >= {"single"}


def test_page_says_so_when_redis_is_away(staff, tmp_path):
    from workflows import conf

    proc, url = redis_server.start(tmp_path, appendonly=False)
    proc.terminate()
    proc.wait(30)
    try:
        down = {"RQ_QUEUES": {name: {"URL": url} for name in conf.queue_names()}}
        with override_settings(WORKFLOWS={**_workflows(), "REDIS_URL": url}, **down):
            dispatch._queues.clear()
            page = staff.get(reverse("workflows:operations"))
    finally:
        dispatch._queues.clear()
    assert page.status_code == 200 and b"Redis cannot be reached" in page.content
    assert b'id="versions"' in page.content  # the database's half is still shown


def test_cli_ops_shows_the_apis_answer(staff):
    from rich.console import Console

    from workflows.cli import operations as cli_ops
    from workflows.cli.main import build_parser

    assert build_parser().parse_args(["ops"]).command == "ops"
    heartbeats.Beater("worker", lambda: {"name": "w1", "step_run_id": None}).beat()
    stale("recovery:h:7", 60, kind="recovery", state={"last_tick_ago": 1.0, "last_actions": {"expired": 2}})
    console = Console(width=200, record=True)
    console.print(cli_ops.tables(staff.get(reverse("workflows:api-operations")).json()))
    text = console.export_text()
    assert "w1" in text and "idle" in text and "gone" in text and "expired 2" in text


# --- the liveness probe (manage.py workflows_alive) ---------------------------------------------------------------


def test_alive_command_exits_0_for_a_process_of_this_host_that_beats_and_1_once_it_stops():
    import socket

    from django.core.management import CommandError, call_command

    stale(f"worker:{socket.gethostname()}:4242", 3 * heartbeats.period() + 1, host=socket.gethostname(), pid=4242)
    with pytest.raises(CommandError, match="not alive") as gone:
        call_command("workflows_alive")
    assert gone.value.returncode == 1
    beater = heartbeats.Beater("recovery")
    beater.beat()
    call_command("workflows_alive", "--kind", "recovery")  # no exception: exit 0
    call_command("workflows_alive", "--pid", str(beater.pid))
    with pytest.raises(CommandError):
        call_command("workflows_alive", "--kind", "worker")  # this host's worker is the gone one
    beater.stop()
    with pytest.raises(CommandError):
        call_command("workflows_alive", "--kind", "recovery")
