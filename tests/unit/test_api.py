"""The JSON API under /api/: every answer is JSON, malformed requests are 400s, other users' runs are 404s."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows.models import Run, RunStatus
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")


class Api:
    """A logged-in client speaking JSON."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, url: str, **params):
        return self.client.get(url, params)

    def post(self, url: str, body=None, raw: str | None = None, content_type: str = "application/json", **extra):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(url, data, content_type=content_type, **extra)


@pytest.fixture
def api(client, user):
    client.force_login(user)
    return Api(client)


def test_api__anonymous_requests_get_401_json(client):
    for url in ("/api/", "/api/workflows/", "/api/runs/", "/api/runs/1/"):
        response = client.get(url)
        assert response.status_code == 401 and "log in" in response.json()["error"]


def test_api__unknown_paths_and_methods_answer_json(api):
    missing = api.get("/api/nothing/here/")
    assert missing.status_code == 404 and "No API endpoint" in missing.json()["error"]
    wrong = api.client.delete("/api/runs/")
    assert wrong.status_code == 405 and wrong["Allow"] == "GET"
    assert api.get("/api/runs/1/cancel/").status_code == 405


def test_workflows__list_with_stats_and_detail_with_graph(api, user):
    flows.counter.start({"value": 1}, user=user)
    drain()
    listed = {w["name"]: w for w in api.get("/api/workflows/").json()["workflows"]}
    assert listed["counter"]["stats"]["runs_24h"] == 1 and listed["counter"]["launchable"]
    assert listed["trip-planner"]["urls"]["page"] == "/workflows/trip-planner/"
    detail = api.get("/api/workflows/trip-planner/").json()
    assert [b["kind"] for b in detail["graph"]["blocks"]] == ["step", "parallel", "branch", "map"]
    assert detail["input_schema"]["required"] == ["city"]
    assert api.get("/api/workflows/nope/").status_code == 404


def test_start__creates_a_run_201(api, user):
    response = api.post("/api/workflows/counter/runs/", {"input": {"value": 4}})
    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get(pk=body["id"])
    assert body["workflow"] == "counter" and body["input"] == {"value": 4} and run.created_by == user
    assert body["urls"]["page"] == f"/runs/{run.pk}/"
    drain()
    assert api.get(f"/api/runs/{run.pk}/").json()["output"] == {"value": 6}


def test_start__invalid_input_is_400_with_pydantic_errors_and_creates_nothing(api):
    response = api.post("/api/workflows/trip-planner/runs/", {"input": {"city": "", "days": 0}})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("city",), ("days",)}
    assert all({"loc", "msg", "type"} <= set(e) for e in errors)
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        ("{not json", "application/json", "Malformed JSON"),
        ("[1, 2]", "application/json", "must be a JSON object"),
        ("input=1", "application/x-www-form-urlencoded", "Content-Type: application/json"),
        ('{"input": {"value": 1}, "user": "root"}', "application/json", "Unknown field(s) user"),
        ('{"input": {"value": 1}, "idempotency_key": 7}', "application/json", "idempotency_key"),
        ('{"input": {"value": 1}, "idempotency_key": ""}', "application/json", "idempotency_key"),
        ("\xff\xfe", "application/json", "Malformed JSON"),
    ],
)
def test_start__malformed_requests_are_400_never_500(api, raw, content_type, message):
    response = api.post("/api/workflows/counter/runs/", raw=raw, content_type=content_type)
    assert response.status_code == 400 and message in response.json()["error"]
    assert Run.objects.count() == 0


def test_start__unknown_workflow_is_404(api):
    assert api.post("/api/workflows/nope/runs/", {"input": 1}).status_code == 404


def test_start__idempotency_key_returns_the_same_run_with_200(api, bob):
    first = api.post("/api/workflows/counter/runs/", {"input": {"value": 1}, "idempotency_key": "k-1"})
    second = api.post("/api/workflows/counter/runs/", {"input": {"value": 1}, "idempotency_key": "k-1"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    bobs = flows.counter.start({"value": 1}, user=bob, idempotency_key="bobs")
    mine = api.post("/api/workflows/counter/runs/", {"input": {"value": 1}, "idempotency_key": "bobs"})
    assert mine.status_code == 201 and mine.json()["id"] != bobs.pk  # keys are per user: Bob's is not revealed


def test_csrf__enforced_for_session_posts(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    refused = client.post("/api/workflows/counter/runs/", "{}", content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/workflows/counter/runs/",
        json.dumps({"input": {"value": 1}}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 201


def test_runs__filtered_and_keyset_paginated(api, user):
    for i in range(7):
        flows.counter.start({"value": i}, user=user)
    flows.failing.start({"value": 1}, user=user)
    drain()
    page = api.get("/api/runs/", limit=3).json()
    assert len(page["runs"]) == 3 and page["count"] == 8 and page["previous"] is None
    seen = [r["id"] for r in page["runs"]]
    while page["next"]:
        page = api.client.get(page["next"]).json()
        seen += [r["id"] for r in page["runs"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == 8
    failed = api.get("/api/runs/", status="failed").json()
    assert [r["workflow"] for r in failed["runs"]] == ["failing"]
    by_workflow = api.get("/api/workflows/counter/runs/").json()
    assert by_workflow["count"] == 7


@pytest.mark.parametrize(
    "params",
    [{"status": "bogus"}, {"created_from": "last week"}, {"limit": "lots"}, {"limit": "0"}, {"cursor": "!!"}],
)
def test_runs__bad_parameters_are_400(api, params):
    response = api.get("/api/runs/", **params)
    assert response.status_code == 400 and response.json()["error"]


def test_run__detail_events_and_step(api, user):
    run = flows.chatty_flow.start({"value": 1}, user=user)
    drain()
    detail = api.get(f"/api/runs/{run.pk}/").json()
    assert detail["status"] == "succeeded" and [s["path"] for s in detail["steps"]] == ["increment", "chatty"]
    assert detail["related"] == {"parent": None, "children": [], "restarted_from": None, "restarts": []}
    events = api.get(f"/api/runs/{run.pk}/events/", after=2, limit=3).json()
    assert [e["seq"] for e in events["events"]] == [3, 4, 5] and events["more"] is True
    step = api.get(f"/api/runs/{run.pk}/steps/chatty/").json()
    assert step["attempts"][0]["output"] == {"value": 20} and step["logs"][0]["message"] == "starting"
    assert api.get(f"/api/runs/{run.pk}/steps/nope/").status_code == 404
    assert api.get(f"/api/runs/{run.pk}/events/", after="x").status_code == 400


def test_run__other_users_runs_are_404(api, bob):
    run = flows.counter.start({"value": 1}, user=bob)
    for url in (f"/api/runs/{run.pk}/", f"/api/runs/{run.pk}/events/", f"/api/runs/{run.pk}/steps/increment/"):
        assert api.get(url).status_code == 404
    assert api.post(f"/api/runs/{run.pk}/cancel/").status_code == 404
    assert api.get("/api/runs/").json()["count"] == 0


def test_actions__cancel_resume_event_retry_restart(api, user, redis_conn):
    nap = cf.long_nap.start({"value": 1}, user=user)
    drain(timeout=1)
    assert api.post(f"/api/runs/{nap.pk}/cancel/").json()["status"] == "canceled"
    again = api.post(f"/api/runs/{nap.pk}/cancel/")
    assert again.status_code == 409 and "already canceled" in again.json()["error"]
    retry = api.post(f"/api/runs/{nap.pk}/retry/")
    assert retry.status_code == 201 and Run.objects.get(pk=retry.json()["id"]).restarted_from_id == nap.pk

    reviewed = cf.reviewed.start({"value": 2}, user=user)
    drain()
    suspended = api.get(f"/api/runs/{reviewed.pk}/").json()["suspended"]
    assert suspended[0]["path"] == "review" and suspended[0]["schema"]["required"] == ["ok"]
    bad = api.post(f"/api/runs/{reviewed.pk}/resume/", {"step": "review", "data": {"ok": "maybe"}})
    assert bad.status_code == 400 and bad.json()["errors"][0]["loc"] == ["ok"]
    assert api.post(f"/api/runs/{reviewed.pk}/resume/", {"data": {"ok": True}}).status_code == 200
    drain()
    assert Run.objects.get(pk=reviewed.pk).status == RunStatus.SUCCEEDED

    waiting = cf.approval.start({"value": 1}, user=user)
    drain()
    assert api.post(f"/api/runs/{waiting.pk}/send-event/", {"data": {}}).status_code == 400  # name required
    unknown = api.post(f"/api/runs/{waiting.pk}/send-event/", {"name": "nope"})
    assert unknown.status_code == 400 and "no wait_for_event" in unknown.json()["error"]
    sent = api.post(f"/api/runs/{waiting.pk}/send-event/", {"name": "approved", "data": {"approved": True, "by": "z"}})
    assert sent.status_code == 200
    drain()
    assert Run.objects.get(pk=waiting.pk).output == {"by": "z", "ok": True}

    done = flows.counter.start({"value": 1}, user=user)
    drain()
    restarted = api.post(f"/api/runs/{done.pk}/restart/", {"from_step": "increment", "input": {"value": 10}})
    assert restarted.status_code == 201
    drain()
    assert Run.objects.get(pk=restarted.json()["id"]).output["value"] >= 11
    assert api.post(f"/api/runs/{done.pk}/restart/", {}).status_code == 400
    assert api.post(f"/api/runs/{done.pk}/restart/", {"from_step": "nope"}).status_code == 400
    assert api.post(f"/api/runs/{done.pk}/retry/").status_code == 409  # it succeeded


def test_actions__visible_is_not_operable(api, user, bob):
    from django.contrib.auth.models import Permission

    run = flows.counter.start({"value": 1}, user=bob)
    user.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    assert api.get(f"/api/runs/{run.pk}/").status_code == 200
    refused = api.post(f"/api/runs/{run.pk}/cancel/")
    assert refused.status_code == 403 and Run.objects.get(pk=run.pk).status != RunStatus.CANCELED
