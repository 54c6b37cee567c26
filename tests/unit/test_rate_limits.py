"""Per-user rate limits (``WORKFLOWS["RATE_LIMITS"]``) on run starts, events and resumes: 429 with Retry-After and
a JSON error from the API and the dashboard's scripts, a 429 page for a plain form; counted in Redis, so shared by
every web process; the Python API is not limited."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows import conf
from workflows.models import Run
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")

JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def limits(settings):
    def apply(**values):
        settings.WORKFLOWS = {**settings.WORKFLOWS, "RATE_LIMITS": values}

    return apply


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, url: str, body: dict | None = None):
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def assert_throttled(response, words: str) -> None:
    assert response.status_code == 429, response.content
    assert 1 <= int(response["Retry-After"]) <= 60
    assert words in response.json()["error"] and "Try again in" in response.json()["error"]


def test_api__starts_over_the_limit_are_429_with_retry_after_and_start_nothing(user, bob, limits):
    limits(start="3/minute")
    alice = logged_in(user)
    url = "/api/workflows/counter/runs/"
    assert [post_json(alice, url, {"input": {"value": i}}).status_code for i in range(3)] == [201] * 3
    refused = post_json(alice, url, {"input": {"value": 9}})
    assert_throttled(refused, "Too many run starts: at most 3 per minute")
    assert Run.objects.filter(created_by=user).count() == 3
    # per user: bob has his own; and trusted code is never limited
    assert post_json(logged_in(bob), url, {"input": {"value": 1}}).status_code == 201
    flows.counter.start({"value": 1}, user=user)
    assert Run.objects.filter(created_by=user).count() == 4


def test_api__retry_and_restart_count_as_starts(user, limits):
    limits(start="1/minute")
    alice = logged_in(user)
    done = flows.counter.start({"value": 1}, user=user)
    drain()
    assert post_json(alice, f"/api/runs/{done.pk}/restart/", {"from_step": "increment"}).status_code == 201
    assert_throttled(post_json(alice, f"/api/runs/{done.pk}/restart/", {"from_step": "increment"}), "run starts")
    assert_throttled(post_json(alice, f"/api/runs/{done.pk}/retry/"), "run starts")


def test_api__events_and_resumes_have_limits_of_their_own(user, limits):
    limits(start=None, event="2/minute", resume="1/minute")
    alice = logged_in(user)
    waiting = cf.approval.start({"value": 1}, user=user)
    reviewed = cf.reviewed.start({"value": 2}, user=user)
    drain()
    event = f"/api/runs/{waiting.pk}/send-event/"
    assert post_json(alice, event, {"name": "nope"}).status_code == 400  # a refused attempt counts too
    assert post_json(alice, event, {"name": "approved", "data": {"approved": True, "by": "z"}}).status_code == 200
    assert_throttled(post_json(alice, event, {"name": "approved", "data": {}}), "Too many events sent")
    resume = f"/api/runs/{reviewed.pk}/resume/"
    assert post_json(alice, resume, {"data": {"ok": True}}).status_code == 200
    assert_throttled(post_json(alice, resume, {"data": {"ok": True}}), "Too many resumes")
    assert [post_json(alice, "/api/workflows/counter/runs/").status_code for _ in range(5)] == [400] * 5  # start: off


def test_forms__the_launch_form_answers_429_json_for_scripts_and_a_page_without(user, limits):
    limits(start="1/minute")
    alice = logged_in(user)
    assert alice.post("/workflows/counter/", {"input.value": "1"}, **JSON).status_code == 201
    scripted = alice.post("/workflows/counter/", {"input.value": "2"}, **JSON)
    assert scripted.status_code == 429 and scripted["Retry-After"]
    assert scripted.json()["ok"] is False and "Too many run starts" in scripted.json()["message"]
    page = alice.post("/workflows/counter/", {"input.value": "3"})
    assert page.status_code == 429 and page["Retry-After"]
    assert b"Too many requests" in page.content and b"Too many run starts: at most 1 per minute" in page.content
    assert Run.objects.count() == 1


def test_forms__resume_and_send_event_are_limited_too(user, limits):
    limits(event="1/minute", resume="1/minute")
    alice = logged_in(user)
    reviewed = cf.reviewed.start({"value": 2}, user=user)
    drain()
    first = alice.post(f"/runs/{reviewed.pk}/resume/", {"step": "x"}, **JSON)
    assert first.status_code in (400, 409)  # refused, and counted
    again = alice.post(f"/runs/{reviewed.pk}/resume/", {"step": "review", "data.ok": "true"}, **JSON)
    assert again.status_code == 429 and "Too many resumes" in again.json()["message"]
    waiting = cf.approval.start({"value": 1}, user=user)
    drain()
    assert alice.post(f"/runs/{waiting.pk}/send-event/", {"name": "x"}, **JSON).status_code == 400
    page = alice.post(f"/runs/{waiting.pk}/send-event/", {"name": "approved", "data.approved": "true"})
    assert page.status_code == 429 and b"Too many events sent" in page.content


def test_settings__a_rate_that_does_not_parse_is_a_configuration_error(limits):
    limits(start="lots")
    with pytest.raises(ImproperlyConfigured, match=r"RATE_LIMITS.*start.*'lots' is not a rate"):
        conf.settings()


def test_redis_down__requests_are_let_through_not_refused(user, settings):
    from types import SimpleNamespace

    from workflows.web import throttle

    settings.WORKFLOWS = {
        **settings.WORKFLOWS,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "RATE_LIMITS": {"start": "1/hour"},
    }
    request = SimpleNamespace(user=user)
    for _ in range(3):  # nothing can be counted: the throttle does not take the site down with Redis
        throttle.check(request, "start")
