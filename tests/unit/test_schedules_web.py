"""Schedules over HTTP: the JSON API, the dashboard pages and the admin, with their permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.testapp import flows
from workflows import Schedule, Workflow
from workflows.definition import registry
from workflows.engine import schedule_admin
from workflows.runtime import recovery
from workflows.store.scheduling import Schedule as ScheduleRow

pytestmark = pytest.mark.usefixtures("engine_db")
API = "/api/workflows/counter/schedules/"


@pytest.fixture
def reader(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def writer(django_user_model):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    bob.user_permissions.add(Permission.objects.get(codename="change_schedule"))
    client = Client()
    client.force_login(bob)
    return client


def post(client, url, body=None, method="post"):
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def test_api__create_list_update_pause_resume_delete(writer, reader):
    created = post(writer, API, {"cron": "0 3 * * *", "timezone": "Europe/Lisbon", "input": {"value": 4}})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"].startswith("cron-") and body["editable"] and body["source"] == "runtime"
    assert len(body["next_times"]) == 5 and all(t.endswith(("+00:00", "+01:00")) for t in body["next_times"])
    assert all("T03:00:00" in t for t in body["next_times"])  # in the schedule's zone
    url = body["urls"]["api"]
    listed = reader.get(API).json()["schedules"]  # any logged-in user reads them
    assert [s["id"] for s in listed] == [body["id"]]
    changed = post(writer, url, {"cron": "30 4 * * *", "overlap": "allow"}, method="patch")
    assert changed.status_code == 200 and changed.json()["cron"] == "30 4 * * *"
    assert post(writer, url + "pause/").json()["paused"] is True
    assert post(writer, url + "pause/").json()["next_times"] == []
    assert post(writer, url + "resume/").json()["paused"] is False
    assert writer.delete(url).status_code == 204
    assert not ScheduleRow.objects.exists()
    assert reader.get(url).status_code == 404


def test_api__readers_may_not_change_schedules_and_nothing_changes(writer, reader):
    s = post(writer, API, {"cron": "0 3 * * *", "input": {"value": 1}}).json()
    url = s["urls"]["api"]
    assert post(reader, API, {"cron": "0 4 * * *", "input": {"value": 1}}).status_code == 403
    assert post(reader, url, {"cron": "0 4 * * *"}, method="patch").status_code == 403
    assert post(reader, url + "pause/").status_code == 403
    assert reader.delete(url).status_code == 403
    assert ScheduleRow.objects.get().cron == "0 3 * * *" and not ScheduleRow.objects.get().paused
    assert Client().get(API).status_code == 401


@pytest.mark.parametrize(
    "body, field",
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "0 3 * * *", "timezone": "Nowhere/City"}, "timezone"),
        ({"cron": "0 3 * * *", "overlap": "queue"}, "overlap"),
        ({"cron": "0 3 * * *", "input": {"value": "not a number"}}, "input"),
        ({"cron": "0 3 * * *", "input": {"value": 1}, "name": "bad name"}, "name"),
        ({"cron": "0 3 * * *", "bogus": 1}, None),
        ({"input": {"value": 1}}, "cron"),
    ],
)
def test_api__bad_values_are_400_and_create_nothing(writer, body, field):
    response = post(writer, API, body)
    assert response.status_code == 400, response.content
    if field:
        assert response.json()["errors"][0]["loc"][0] == field
    assert not ScheduleRow.objects.exists()


def test_api__duplicate_name_is_400_unknown_workflow_404(writer):
    assert post(writer, API, {"cron": "0 3 * * *", "input": {"value": 1}, "name": "n"}).status_code == 201
    assert post(writer, API, {"cron": "0 4 * * *", "input": {"value": 1}, "name": "n"}).status_code == 400
    assert post(writer, "/api/workflows/nope/schedules/", {"cron": "0 3 * * *"}).status_code == 404


def test_api__code_defined_schedule_may_be_paused_not_edited_or_deleted(writer):
    flow = Workflow("sched-web-code", input=flows.Num, schedules=[Schedule("0 3 * * *", input={"value": 1})])
    flow.then(flows.increment).commit()
    try:
        schedule_admin.sync_code(prune_unregistered=False)
        s = ScheduleRow.objects.get(workflow__name="sched-web-code")
        url = f"/api/schedules/{s.pk}/"
        assert post(writer, url, {"cron": "0 4 * * *"}, method="patch").status_code == 409
        assert writer.delete(url).status_code == 409
        assert post(writer, url, {"paused": True}, method="patch").json()["paused"] is True
        s.refresh_from_db()
        assert s.cron == "0 3 * * *" and s.paused
    finally:
        registry.unregister(flow)


def test_dashboard__workflow_page_lists_schedules_next_times_and_last_runs(writer, reader):
    s = schedule_admin.create(
        "counter",
        {"cron": "*/10 * * * *", "input": {"value": 1}, "name": "tenner", "timezone": "Europe/Lisbon"},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    recovery.fire_schedules(now=datetime(2026, 1, 1, 0, 10, 1, tzinfo=UTC))
    run = s.fires.get().run
    page = reader.get("/workflows/counter/").content.decode()
    assert 'id="schedules"' in page and "tenner" in page and "*/10 * * * *" in page
    assert page.count("WET</li>") + page.count("WEST</li>") >= 5  # next five, in the schedule's zone
    assert "+ New schedule" not in page and "Pause</button>" not in page  # a reader sees, does not change
    # the run started by the schedule: the reader does not own it, a staff user sees it with its schedule
    assert f'href="/runs/{run.pk}/"' not in page
    writer_page = writer.get("/workflows/counter/").content.decode()
    assert "+ New schedule" in writer_page and "Pause</button>" in writer_page


def test_dashboard__create_edit_pause_delete_through_forms(writer, reader):
    form = {"cron": "0 3 * * *", "timezone": "UTC", "input": '{"value": 2}', "overlap": "skip", "catchup": "latest"}
    assert reader.get("/workflows/counter/schedules/new/").status_code == 403
    assert reader.post("/workflows/counter/schedules/new/", form).status_code == 403
    bad = writer.post("/workflows/counter/schedules/new/", {**form, "cron": "99 * * * *"})
    assert bad.status_code == 400 and b"Bad minute" in bad.content and not ScheduleRow.objects.exists()
    ok = writer.post("/workflows/counter/schedules/new/", {**form, "name": "nightly"})
    assert ok.status_code == 302 and ok["Location"].endswith("/workflows/counter/#schedules")
    s = ScheduleRow.objects.get(name="nightly")
    assert s.input == {"value": 2} and s.created_by.username == "bob"
    edited = writer.post(f"/schedules/{s.pk}/", {**form, "name": "nightly", "cron": "15 2 * * *"})
    assert edited.status_code == 302
    s.refresh_from_db()
    assert s.cron == "15 2 * * *"
    assert reader.get(f"/schedules/{s.pk}/").status_code == 200
    assert reader.post(f"/schedules/{s.pk}/pause/").status_code == 403
    writer.post(f"/schedules/{s.pk}/pause/")
    s.refresh_from_db()
    assert s.paused
    writer.post(f"/schedules/{s.pk}/delete/")
    assert not ScheduleRow.objects.exists()


def test_run_page_says_which_schedule_and_due_time_started_it(admin_client):
    s = schedule_admin.create(
        "counter",
        {"cron": "*/10 * * * *", "input": {"value": 1}, "name": "tenner"},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    recovery.fire_schedules(now=datetime(2026, 1, 1, 0, 10, 1, tzinfo=UTC))
    page = admin_client.get(f"/runs/{s.fires.get().run_id}/").content.decode()
    assert f'data-schedule="{s.pk}"' in page and "tenner" in page and "2026-01-01 00:10" in page


def test_admin__create_validates_and_code_defined_is_pause_only(admin_client):
    workflow_id = schedule_admin.row_for(registry.get("counter"))
    add = "/admin/workflows/schedule/add/"
    form = {"workflow": workflow_id, "name": "adm", "cron": "0 3 * * *", "timezone": "UTC", "input": '{"value": 1}'}
    form.update(overlap="skip", catchup="latest", **{"fires-TOTAL_FORMS": 0, "fires-INITIAL_FORMS": 0})
    bad = admin_client.post(add, {**form, "cron": "0 25 * * *"})
    assert bad.status_code == 200 and b"Bad hour" in bad.content and not ScheduleRow.objects.exists()
    assert admin_client.post(add, form).status_code == 302
    s = ScheduleRow.objects.get(name="adm")
    assert s.source == "runtime" and s.next_due is not None
    assert admin_client.get(f"/admin/workflows/schedule/{s.pk}/change/").status_code == 200
    flow = Workflow("sched-admin-code", input=flows.Num, schedules=[Schedule("0 3 * * *", input={"value": 1})])
    flow.then(flows.increment).commit()
    try:
        schedule_admin.sync_code(prune_unregistered=False)
        code = ScheduleRow.objects.get(workflow__name="sched-admin-code")
        change = f"/admin/workflows/schedule/{code.pk}/change/"
        edited = admin_client.post(change, {**form, "cron": "0 9 * * *", "paused": "on"})
        assert edited.status_code == 302, edited.content
        code.refresh_from_db()
        assert code.paused and code.cron == "0 3 * * *"  # only "paused" is editable
        assert admin_client.post(f"/admin/workflows/schedule/{code.pk}/delete/", {"post": "yes"}).status_code == 403
        assert ScheduleRow.objects.filter(pk=code.pk).exists()
    finally:
        registry.unregister(flow)
