"""Dashboard pages, forms generated from JSON Schema, run actions, the runs list's pagination, and the admin.

Runs progress through ``drain()`` (in-process workers) on a real database (``engine_db``).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from examples import flows as examples
from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows.models import Run, RunStatus
from workflows.testing import drain
from workflows.web import drawing, queries
from workflows.web.forms import SchemaForm

pytestmark = pytest.mark.usefixtures("engine_db")
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")


# --- login -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/workflows/trip-planner/", "/runs/", "/runs/1/", "/runs/1/cancel/"])
def test_pages__anonymous_visitors_are_sent_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login__the_project_template_logs_in_and_out(client, user):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'id="id_username"' in page.content
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_login__wrong_password_shows_an_error(client, user):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200 and b"didn't match" in response.content


# --- home ------------------------------------------------------------------------------------------------------


def test_home__lists_every_workflow_with_a_drawing_stats_and_recent_runs(alice_client, user):
    run = flows.counter.start({"value": 1}, user=user)
    drain()
    response = alice_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    for name in ("trip-planner", "expense-approval", "counter"):
        assert f'data-workflow="{name}"' in html
    assert 'class="graph graph-compact"' in html
    assert f'data-run="{run.pk}"' in html and 'data-live-runs="runs"' in html
    card = next(c for c in response.context["cards"] if c["info"].name == "counter")
    assert card["stats"]["runs_24h"] == 1 and card["stats"]["success_rate"] == 1.0
    assert card["stats"]["p50_seconds"] is not None and card["stats"]["last_run"]["id"] == run.pk


def test_home__shows_only_the_users_own_runs(alice_client, bob):
    other = flows.counter.start({"value": 1}, user=bob)
    assert f'data-run="{other.pk}"'.encode() not in alice_client.get("/").content


# --- workflow page and launch form ------------------------------------------------------------------------------


def test_workflow_page__chart_counts_runs_per_utc_day_by_outcome_and_stats_cover_only_this_workflow(user, bob):
    now = timezone.now().replace(hour=12)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    made = [flows.counter.start({"value": i}, user=user) for i in range(4)]
    made.append(flows.counter.start({"value": 9}, user=bob))
    made.append(examples.trip_planner.start({"city": "Oslo", "days": 1}, user=user))
    at = [midnight, midnight - dt.timedelta(microseconds=1), now - dt.timedelta(days=13), now - dt.timedelta(days=14)]
    for run, created, status in zip(made, at + [now, now], ["succeeded", "failed", "canceled"] * 2, strict=True):
        Run.objects.filter(pk=run.pk).update(created_at=created, status=status)
    days = queries.daily_counts(user, "counter", now=now)
    assert len(days) == 14 and days[-1]["day"] == now.date().isoformat()
    assert days[-1] == {"day": now.date().isoformat(), "total": 1, "succeeded": 1, "failed": 0, "canceled": 0}
    assert days[-2]["total"] == 1 and days[-2]["failed"] == 1  # a microsecond before midnight is yesterday
    assert days[0]["total"] == 1 and days[0]["canceled"] == 1  # 14 days back (today included); 15 is out
    assert sum(d["total"] for d in days) == 3  # bob's run is not alice's to count
    stats = queries.workflow_stats(user, now=now, name="counter")
    assert list(stats) == ["counter"] and stats["counter"]["runs_24h"] == 2  # the two around midnight


def test_workflow_page__graph_form_and_runs(alice_client):
    html = alice_client.get("/workflows/trip-planner/").content.decode()
    for step in ("locate", "weather", "activities", "luxury_hotel", "budget_hostel", "assemble"):
        assert f'data-step="{step}"' in html
    assert "in parallel" in html and "branch" in html
    assert 'name="input.city"' in html and 'name="input.days"' in html and 'value="3"' in html  # default
    assert '<option value="luxury">' in html and 'name="idempotency_key"' in html
    assert "Where to go" in html  # description as help text
    assert 'id="chart-data"' in html


def test_workflow_page__lists_the_versions_with_their_runs_in_flight(alice_client, user):
    from workflows import Workflow
    from workflows.definition import registry

    Workflow("versions-page", input=flows.Num, version="0").then(flows.increment).commit()
    one = Workflow("versions-page", input=flows.Num, version="1").then(cf.review).commit()
    try:
        for value in (1, 2):
            one.start({"value": value}, user=user)
        drain()  # both suspended
        Workflow("versions-page", input=flows.Num, version="2").then(cf.review).then(flows.increment).commit()
        html = " ".join(alice_client.get("/workflows/versions-page/").content.decode().split())
        assert 'version 2</span> <span class="chip">newest: new runs start here</span> no runs in flight </li>' in html
        assert "version 1</span> 2 runs in flight: keep it deployed" in html
        assert "version 0</span> no runs in flight: may be removed" in html
        assert html.index("version 2</span>") < html.index("version 1</span>") < html.index("version 0</span>")
        registry._flows.pop("versions-page")  # a process where none is deployed: the page shows the stored row
        html = " ".join(alice_client.get("/workflows/versions-page/").content.decode().split())
        assert 'version 1</span> <span class="chip chip-warn">not deployed here</span> 2 runs in flight: ' in html
        assert "deploy it again alongside the new one, or they fail at the next step" in html
        assert "version 2</span>" not in html  # not deployed, nothing in flight
    finally:
        registry._flows.pop("versions-page", None)


def test_workflow_page__unknown_workflow_is_404(alice_client):
    assert alice_client.get("/workflows/nope/").status_code == 404


def test_launch__valid_form_starts_a_run_and_redirects_to_it(alice_client, user):
    response = alice_client.post(
        "/workflows/trip-planner/", {"input.city": "Paris", "input.days": "2", "input.budget": "luxury"}
    )
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.input == {"city": "Paris", "days": 2, "budget": "luxury"} and run.created_by == user


def test_launch__invalid_form_shows_pydantic_errors_inline_and_creates_nothing(alice_client):
    response = alice_client.post("/workflows/trip-planner/", {"input.city": "", "input.days": "zero"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Field required" in html
    assert "Input should be a valid integer" in html
    assert 'aria-invalid="true"' in html and 'value="zero"' in html  # what was typed is kept
    assert Run.objects.count() == 0


def test_launch__json_answers_for_the_page_script(alice_client):
    bad = alice_client.post("/workflows/trip-planner/", {"input.city": "X", "input.days": "99"}, **JSON)
    assert bad.status_code == 400
    errors = bad.json()["errors"]
    assert errors == [{"field": "input.days", "id": "f-input-days", "msg": "Input should be less than or equal to 30"}]
    good = alice_client.post("/workflows/trip-planner/", {"input.city": "X"}, **JSON)
    assert good.status_code == 201 and good.json()["redirect"] == f"/runs/{good.json()['run']}/"


def test_launch__a_used_idempotency_key_says_which_run_has_it(alice_client):
    data = {"input.city": "Lima", "idempotency_key": "trip-1"}
    first = alice_client.post("/workflows/trip-planner/", data)
    run = Run.objects.get()
    assert first.status_code == 302 and first["Location"] == f"/runs/{run.pk}/"
    second = alice_client.post("/workflows/trip-planner/", {**data, "input.city": "Quito"})  # no JavaScript: the page
    html = second.content.decode()
    assert second.status_code == 409 and Run.objects.count() == 1
    assert f"A run with this key exists: #{run.pk}, started with city=Lima" in html
    assert f'href="/runs/{run.pk}/"' in html and 'value="Quito"' in html  # the form keeps what was typed
    scripted = alice_client.post("/workflows/trip-planner/", data, **JSON).json()
    assert scripted["existing"] == {"id": run.pk, "url": f"/runs/{run.pk}/", "message": scripted["message"]}
    assert scripted["ok"] is False and scripted["errors"][0]["field"] == "idempotency_key"
    too_long = alice_client.post("/workflows/trip-planner/", {"input.city": "Lima", "idempotency_key": "k" * 300})
    assert too_long.status_code == 400 and b"At most 255 characters" in too_long.content


def test_launch__lists_and_nested_values_from_the_form(alice_client):
    response = alice_client.post(
        "/workflows/expense-approval/",
        {
            "input.employee": "Ann",
            "input.amount": "12.5",
            "input.category": "training",
            "input.receipts.0.__item__": "1",
            "input.receipts.0": "R-1",
            "input.receipts.7.__item__": "1",  # indices need not be contiguous (items added and removed)
            "input.receipts.7": "R-2",
            "input.urgent": "true",
        },
    )
    assert response.status_code == 302
    assert Run.objects.get().input == {
        "employee": "Ann",
        "amount": 12.5,
        "category": "training",
        "receipts": ["R-1", "R-2"],
        "urgent": True,
    }


# --- forms from JSON Schema -----------------------------------------------------------------------------------


SCHEMA = {
    "$defs": {
        "Address": {
            "properties": {"street": {"type": "string"}, "zip": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
            "required": ["street"],
            "type": "object",
        },
        "Color": {"enum": ["red", "blue"], "type": "string"},
    },
    "properties": {
        "name": {"type": "string", "description": "Your name"},
        "when": {"format": "date", "type": "string"},
        "ok": {"type": "boolean", "default": True},
        "color": {"$ref": "#/$defs/Color", "default": "blue"},
        "home": {"$ref": "#/$defs/Address"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": ["a", "b"]},
        "extra": {"type": "object", "additionalProperties": True},
        "mode": {"const": "fast", "type": "string"},
    },
    "required": ["name", "home"],
    "type": "object",
}


def test_schema_form__builds_widgets_from_the_schema():
    form = SchemaForm(SCHEMA)
    by_name = {f.name: f for f in form.fields()}
    assert by_name["input.name"].kind == "text" and by_name["input.name"].required
    assert by_name["input.name"].help == "Your name"
    assert by_name["input.when"].kind == "date"
    assert by_name["input.ok"].kind == "checkbox" and by_name["input.ok"].value is True
    assert by_name["input.color"].choices == [("red", "red"), ("blue", "blue")]
    assert by_name["input.color"].value == "blue"
    assert by_name["input.home"].kind == "object"
    assert by_name["input.home.zip"].kind == "integer" and by_name["input.home.zip"].nullable
    assert by_name["input.tags"].kind == "array" and [c.value for c in by_name["input.tags"].children] == ["a", "b"]
    assert by_name["input.extra"].kind == "json"
    assert by_name["input.mode"].kind == "const"


def test_schema_form__reads_posted_fields_into_json():
    post = {
        "input.name": "Zoe",
        "input.when": "",
        "input.color": "red",
        "input.home.street": "Main St",
        "input.home.zip": "",
        "input.tags.3.__item__": "1",
        "input.tags.3": "x",
        "input.extra": '{"k": [1, 2]}',
    }
    form = SchemaForm(SCHEMA).bind(post)
    assert not form.has_errors
    assert form.value == {
        "name": "Zoe",
        "ok": False,  # an unchecked checkbox
        "color": "red",
        "home": {"street": "Main St"},
        "tags": ["x"],
        "extra": {"k": [1, 2]},
        "mode": "fast",
    }


def test_schema_form__bad_json_and_pydantic_errors_land_on_their_fields():
    form = SchemaForm(SCHEMA).bind({"input.name": "Zoe", "input.extra": "{nope", "input.home.street": "s"})
    assert form.has_errors and "Invalid JSON" in form.error_list()[0]["msg"]
    form = SchemaForm(SCHEMA).bind({"input.tags.0.__item__": "1", "input.tags.0": "t"})
    form.add_errors(
        [
            {"loc": ["home", "street"], "msg": "Field required", "type": "missing"},
            {"loc": ["tags", 0], "msg": "bad tag", "type": "x"},
            {"loc": [], "msg": "whole thing", "type": "x"},
            {"loc": ["unknown"], "msg": "no such field", "type": "x"},
        ]
    )
    errors = {e["field"]: e["msg"] for e in form.error_list() if e["field"]}
    assert errors == {"input.home.street": "Field required", "input.tags.0": "bad tag"}
    assert form.non_field_errors == ["whole thing", "unknown: no such field"]


def test_schema_form__any_input_is_a_json_text_area():
    form = SchemaForm({})
    assert form.root.kind == "json"
    assert SchemaForm({}).bind({"input": "[1, 2]"}).value == [1, 2]
    assert SchemaForm({}).bind({"input": ""}).value is None
    assert SchemaForm({"type": "array", "items": {"type": "integer"}}).bind(
        {"input.0.__item__": "1", "input.0": "4", "input.1.__item__": "1", "input.1": "x"}
    ).value == [4, "x"]  # pydantic, not the form, says "x" is not an integer


# --- the run page ----------------------------------------------------------------------------------------------


def test_run_page__graph_coloured_by_status_with_steps_logs_and_output(alice_client, user):
    run = flows.chatty_flow.start({"value": 1}, user=user)
    drain()
    response = alice_client.get(f"/runs/{run.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-step="increment"' in html and 'data-status="succeeded"' in html
    assert 'id="run-data"' in html and '"last_seq"' in html
    assert response.context["initial"]["logs"]  # ctx.log lines
    assert 'id="output-heading"' in html


def test_run_page__foreach_and_loop_nodes_show_progress_and_iteration(alice_client, user):
    run = examples.research_digest.start({"topics": ["a", "b", "c"], "quality": 0.6}, user=user)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    html = alice_client.get(f"/runs/{run.pk}/").content.decode()
    assert '<text class="node-count" x="160" y="38" text-anchor="end">3/3</text>' in html
    assert ">#2</text>" in html  # revise ran twice: 0.35 -> 0.55 -> 0.75
    assert f"/runs/{run.pk + 1}/" in html  # the nested publish-digest run is linked


def test_run_page__another_users_run_is_404_unless_allowed(alice_client, bob, user):
    run = flows.counter.start({"value": 1}, user=bob)
    assert alice_client.get(f"/runs/{run.pk}/").status_code == 404
    assert alice_client.post(f"/runs/{run.pk}/cancel/").status_code == 404
    user.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    assert alice_client.get(f"/runs/{run.pk}/").status_code == 200
    refused = alice_client.post(f"/runs/{run.pk}/cancel/", **JSON)  # may see, may not change
    assert refused.status_code == 403 and Run.objects.get(pk=run.pk).status != RunStatus.CANCELED


def test_run_page__fragments_follow_the_runs_state(alice_client, user):
    run = cf.reviewed.start({"value": 3}, user=user)
    drain()
    actions = alice_client.get(f"/runs/{run.pk}/?fragment=actions").content.decode()
    assert 'data-suspended="review"' in actions and 'name="data.ok"' in actions
    assert "approve 3?" in actions
    summary = alice_client.get(f"/runs/{run.pk}/?fragment=summary").content.decode()
    assert "Input" in summary and "<html" not in summary


def test_resume__from_the_generated_form(alice_client, user):
    run = cf.reviewed.start({"value": 3}, user=user)
    drain()
    response = alice_client.post(f"/runs/{run.pk}/resume/", {"step": "review", "data.ok": "true"}, **JSON)
    assert response.status_code == 200 and response.json()["ok"]
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.output["ok"] is True


def test_resume__errors_are_shown_and_change_nothing(alice_client, user):
    run = flows.counter.start({"value": 3}, user=user)
    drain()
    response = alice_client.post(f"/runs/{run.pk}/resume/", {"step": "x"}, **JSON)
    assert response.status_code == 409 and "only a suspended step" in response.json()["message"]
    redirect = alice_client.post(f"/runs/{run.pk}/resume/", {"step": "x"})  # without JavaScript: a message
    assert redirect.status_code == 302 and redirect["Location"] == f"/runs/{run.pk}/"


def test_send_event__from_the_generated_form(alice_client, user):
    run = cf.approval.start({"value": 1}, user=user)
    drain()
    actions = alice_client.get(f"/runs/{run.pk}/?fragment=actions").content.decode()
    assert "Waiting for event" in actions and 'name="data.by"' in actions
    bad = alice_client.post(f"/runs/{run.pk}/send-event/", {"name": "approved", "data.approved": "true"}, **JSON)
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "data.by"
    good = alice_client.post(
        f"/runs/{run.pk}/send-event/", {"name": "approved", "data.approved": "true", "data.by": "Zoe"}, **JSON
    )
    assert good.status_code == 200
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.output == {"by": "Zoe", "ok": True}


def test_cancel_retry_and_restart_through_the_engine(alice_client, user, redis_conn):
    run = cf.long_nap.start({"value": 1}, user=user)
    drain(timeout=1)
    assert alice_client.post(f"/runs/{run.pk}/cancel/", **JSON).json()["ok"]
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELED
    again = alice_client.post(f"/runs/{run.pk}/cancel/", **JSON)
    assert again.status_code == 409 and "already canceled" in again.json()["message"]

    retried = alice_client.post(f"/runs/{run.pk}/retry/", **JSON).json()
    new = Run.objects.get(pk=int(retried["redirect"].strip("/").split("/")[-1]))
    assert new.restarted_from_id == run.pk

    done = flows.counter.start({"value": 1}, user=user)
    drain()
    restarted = alice_client.post(f"/runs/{done.pk}/restart/", {"from_step": "increment"})
    assert restarted.status_code == 302 and restarted["Location"] != f"/runs/{done.pk}/"
    unknown = alice_client.post(f"/runs/{done.pk}/restart/", {"from_step": "nope"}, **JSON)
    assert unknown.status_code == 400 and "no step 'nope'" in unknown.json()["message"]
    assert alice_client.post(f"/runs/{done.pk}/explode/").status_code == 404
    assert alice_client.get(f"/runs/{done.pk}/cancel/").status_code == 405


# --- the runs list ---------------------------------------------------------------------------------------------


def _many_runs(user, n: int) -> list[Run]:
    from workflows.store.workflow_rows import row_for

    workflow_id = row_for(flows.counter)
    start = timezone.now() - dt.timedelta(hours=1)
    rows = [
        Run(
            workflow_id=workflow_id,
            version=flows.counter.version,
            status=RunStatus.SUCCEEDED if i % 3 else RunStatus.FAILED,
            created_by=user,
            idempotency_key=f"key-{i}",
            created_at=start + dt.timedelta(seconds=i // 2),  # pairs share a timestamp: ties broken by id
        )
        for i in range(n)
    ]
    Run.objects.bulk_create(rows)
    return list(Run.objects.order_by("-created_at", "-id"))


def test_runs_list__keyset_pages_cover_every_run_once_without_offset_or_full_count(alice_client, user):
    expected = [r.pk for r in _many_runs(user, 130)]
    seen, url = [], "/runs/"
    with CaptureQueriesContext(connection) as queries_run:
        while url:
            response = alice_client.get(url)
            page = response.context["page"]
            seen += [r.pk for r in page.runs]
            url = f"/runs/?cursor={page.older}" if page.older else None
    assert seen == expected
    sql = " ".join(q["sql"].upper() for q in queries_run.captured_queries)
    assert "OFFSET" not in sql
    assert "COUNT(*)" not in sql.replace("SELECT COUNT(*) FROM (SELECT", "")  # only capped counts
    back = alice_client.get(f"/runs/?cursor={page.newer}").context["page"]
    assert [r.pk for r in back.runs] == expected[50:100]


def test_runs_list__filters_by_workflow_status_date_and_text(alice_client, user):
    runs = _many_runs(user, 12)
    failed = alice_client.get("/runs/?status=failed").context["page"]
    assert {r.status for r in failed.runs} == {"failed"} and failed.count == 4
    key = alice_client.get("/runs/?q=key-11").context["page"]
    assert [r.idempotency_key for r in key.runs] == ["key-11"]
    by_id = alice_client.get(f"/runs/?q=%23{runs[3].pk}").context["page"]
    assert runs[3].pk in [r.pk for r in by_id.runs]
    # the runs' days (made an hour ago: not always today's date)
    first, last = (timezone.localtime(r.created_at).date().isoformat() for r in (runs[-1], runs[0]))
    assert alice_client.get(f"/runs/?created_from={first}&created_to={last}").context["page"].count == 12
    assert alice_client.get("/runs/?workflow=trip-planner").context["page"].count == 0
    bad = alice_client.get("/runs/?created_from=yesterday&status=nope")
    assert bad.status_code == 200 and set(bad.context["filter_errors"]) == {"created_from", "status"}
    assert alice_client.get("/runs/?cursor=garbage").status_code == 200  # a bad cursor: the first page


def test_capped_count__stops_counting_at_the_cap(user):
    _many_runs(user, 30)
    assert queries.capped_count(Run.objects.all(), cap=10) == (10, True)
    assert queries.capped_count(Run.objects.all(), cap=100) == (30, False)


# --- drawing ---------------------------------------------------------------------------------------------------


def test_drawing__nodes_carry_their_step_ids_blocks_and_kinds():
    graph = examples.research_digest.graph.to_json()
    svg = drawing.render(graph)
    assert 'data-step="topics" data-block="0" data-kind="map"' in svg
    assert 'data-step="research" data-block="1" data-kind="foreach"' in svg
    assert "↻ loop until" in svg and "foreach · ×3" in svg
    assert 'href="/workflows/publish-digest/"' in svg  # a nested workflow links to its page
    assert "tabindex" not in svg and 'tabindex="0"' in drawing.render(graph, interactive=True)
    assert drawing.node_id_of("research[12]") == "research" and drawing.node_id_of("revise#3") == "revise"


# --- admin -----------------------------------------------------------------------------------------------------


def test_admin__lists_runs_with_links_and_acts_through_the_engine(client, staff, redis_conn):
    client.force_login(staff)
    sleeping = cf.long_nap.start({"value": 1}, user=staff)
    failed = flows.failing.start({"value": 1}, user=staff)
    drain(timeout=1)
    changelist = client.get("/admin/workflows/run/").content.decode()
    assert f"/runs/{sleeping.pk}/" in changelist and "watch live" in changelist and "/admin/rq/" in changelist
    page = client.get(f"/admin/workflows/run/{sleeping.pk}/change/")
    assert page.status_code == 200 and b"Step runs" in page.content and b"events of this run" in page.content
    for url in (
        "/admin/workflows/workflow/",
        "/admin/workflows/steprun/",
        "/admin/workflows/runevent/",
        "/admin/workflows/pool/",
        "/admin/workflows/inboundevent/",
        "/admin/workflows/workflowversion/",
    ):
        assert client.get(url).status_code == 200, url  # fmt: skip
    client.post("/admin/workflows/run/", {"action": "cancel_runs", "_selected_action": [sleeping.pk]})
    assert Run.objects.get(pk=sleeping.pk).status == RunStatus.CANCELED
    client.post("/admin/workflows/run/", {"action": "retry_runs", "_selected_action": [failed.pk]})
    assert Run.objects.filter(restarted_from=failed).count() == 1
    assert client.get("/admin/rq/").status_code == 200
