"""The pools' JSON API, the dashboard's pools page and admin, and the run page saying why a step waits."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.testapp import flow_control_flows as fc
from workflows.engine import pool_control
from workflows.models import Pool, StepRun, StepStatus

pytestmark = pytest.mark.usefixtures("engine_db")


@pytest.fixture
def staff(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True))
    return client


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def post(client, name: str, body: dict | str):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(reverse("workflows:api-pool", args=[name]), data, content_type="application/json")


def test_api__lists_every_pool_with_its_limits_and_usage(alice):
    fc.rated.start({"value": 1})
    answer = alice.get(reverse("workflows:api-pools")).json()["results"]
    rated = next(p for p in answer if p["name"] == "rated")
    assert rated["limit"] == 10 and rated["rate"] == "2/3s" and rated["started_in_window"] == 1
    assert rated["running"] == 1 and rated["paused"] is False
    assert alice.get(reverse("workflows:api-pool", args=["nope"])).status_code == 404


def test_api__staff_change_a_limit_and_pause_at_runtime(staff):
    answer = post(staff, "narrow", {"max_parallel": 1, "paused": True})
    assert answer.status_code == 200 and answer.json()["limit"] == 1 and answer.json()["paused"] is True
    assert Pool.objects.get(name="narrow").limit == 1
    run = fc.narrow3.start({"value": 1})
    assert StepRun.objects.get(run=run).status == StepStatus.PENDING
    answer = post(staff, "narrow", {"paused": False, "max_parallel": None})
    assert answer.json()["limit"] == 3 and answer.json()["paused"] is False
    assert StepRun.objects.get(run=run).status == StepStatus.QUEUED  # admitted at once


@pytest.mark.parametrize(
    "body", [{"max_parallel": 0}, {"max_parallel": "2"}, {"paused": "yes"}, {"limit": 2}, {}, "[1]", "{"]
)
def test_api__bad_changes_are_400_and_change_nothing(staff, body):
    answer = post(staff, "narrow", body)
    assert answer.status_code == 400 and "error" in answer.json()
    assert pool_control.state("narrow").limit == 3 and not pool_control.state("narrow").paused


def test_api__only_staff_change_pools_and_anonymous_is_401(client, alice):
    assert post(alice, "narrow", {"paused": True}).status_code == 403
    assert not pool_control.state("narrow").paused
    client.logout()
    assert client.get(reverse("workflows:api-pools")).status_code == 401


def test_dashboard__pools_page_shows_and_changes_the_pools(staff):
    pool_control.pause("single")
    page = staff.get(reverse("workflows:pools"))
    assert page.status_code == 200 and b'data-pool="single"' in page.content and b"paused" in page.content
    staff.post(reverse("workflows:pools"), {"pool": "single", "action": "resume"})
    staff.post(reverse("workflows:pools"), {"pool": "narrow", "action": "limit", "max_parallel": "2"})
    assert not pool_control.state("single").paused and pool_control.state("narrow").limit == 2
    bad = staff.post(reverse("workflows:pools"), {"pool": "narrow", "action": "limit", "max_parallel": "-4"})
    assert bad.status_code == 400 and pool_control.state("narrow").limit == 2


def test_dashboard__a_user_sees_pools_but_cannot_change_them(alice):
    assert b"<form" not in alice.get(reverse("workflows:pools")).content.split(b'id="pools"')[1]
    assert alice.post(reverse("workflows:pools"), {"pool": "single", "action": "pause"}).status_code == 403
    assert not pool_control.state("single").paused


def test_admin__pools_are_paused_and_limited_from_the_admin(admin_client):
    fc.narrow3.start({"value": 1})  # the pool's row exists once a step used it
    url = reverse("admin:workflows_pool_changelist")
    assert admin_client.get(url).status_code == 200
    admin_client.post(url, {"action": "pause_pools", "_selected_action": ["narrow"]})
    assert pool_control.state("narrow").paused
    change = reverse("admin:workflows_pool_change", args=["narrow"])
    assert admin_client.post(change, {"limit": "2", "paused": ""}).status_code == 302
    assert pool_control.state("narrow").limit == 2 and not pool_control.state("narrow").paused


def test_run_page__says_why_each_step_waits_and_until_when(alice, user):
    pool_control.pause("single")
    paused = fc.single.start({"value": 0}, user=user)
    page = alice.get(reverse("workflows:run", args=[paused.pk]))
    assert b'data-reason="paused"' in page.content and b"pool &#x27;single&#x27; is paused" in page.content
    rated = [fc.rated.start({"value": i}, user=user) for i in range(3)]
    page = alice.get(reverse("workflows:run", args=[rated[2].pk]) + "?fragment=summary")
    assert b'data-reason="rate"' in page.content and b"may go at" in page.content
    detail = alice.get(reverse("workflows:api-run", args=[rated[2].pk])).json()
    assert detail["priority"] == 0 and [w["reason"] for w in detail["waiting"]] == ["rate"]
    assert detail["waiting"][0]["until"]


def test_api__a_start_takes_a_priority_and_a_token_holder_changes_pools_if_staff(alice, django_user_model):
    from django.test import Client

    from workflows.store import tokens

    def start(body):
        url = reverse("workflows:api-workflow-runs", args=["fc-single"])
        return alice.post(url, json.dumps({"input": {"value": 1}, **body}), content_type="application/json")

    started = start({"priority": 7})
    assert started.status_code == 201 and started.json()["priority"] == 7
    for bad in ("7", 2**31, True, 1.5):  # an integer of 32 bits, not something that looks like one
        answer = start({"priority": bad})
        assert answer.status_code == 400 and "priority" in answer.json()["error"], bad
    assert StepRun.objects.filter(run__workflow__name="fc-single").count() == 1  # only the first started

    ops = django_user_model.objects.create_user("ops", password="pw-ops-123", is_staff=True)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens.create(ops, 'ops')[1]}"}
    url = reverse("workflows:api-pool", args=["narrow"])
    answer = Client().post(url, json.dumps({"paused": True}), content_type="application/json", **bearer)
    assert answer.status_code == 200 and answer.json()["paused"] is True  # no CSRF with a token
    assert pool_control.state("narrow").paused
