"""The Prometheus endpoint (``<prefix>/metrics``): who may scrape it, and what it counts (in-process workers)."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.urls import reverse

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.testapp import observe_flows  # noqa: E402
from workflows import metrics  # noqa: E402
from workflows.live.consumer import LiveConsumer  # noqa: E402
from workflows.runtime import recovery  # noqa: E402
from workflows.testing import drain  # noqa: E402

TOKEN = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    response = client.get(reverse("workflows:metrics"), **(headers or TOKEN))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def sampled(name: str, **labels) -> float:
    """One sample of what the endpoint would show now (every process's values)."""
    body, _ = metrics.exposition()
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_metrics__anonymous_401_non_staff_403_staff_or_token_200(db, client, django_user_model):
    url = reverse("workflows:metrics")
    response = client.get(url)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert client.get(url, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get(url, **TOKEN).status_code == 200
    client.force_login(django_user_model.objects.create_user("bob", password="pw-bob-123456"))
    assert client.get(url).status_code == 403
    client.force_login(django_user_model.objects.create_user("ops", password="pw-ops-123456", is_staff=True))
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 405


def test_metrics__a_staff_users_api_token_200_another_users_403_a_revoked_one_401(db, django_user_model):
    from django.test import Client

    from workflows.store import tokens

    url = reverse("workflows:metrics")
    ops = django_user_model.objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123456")
    (staff_token, staff), (_, plain) = tokens.create(ops, "scraper"), tokens.create(bob, "mine")
    assert scrape(Client(), HTTP_AUTHORIZATION=f"Bearer {staff}")  # the samples, as with METRICS_TOKEN
    assert Client().get(url, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 403
    session = Client()
    session.force_login(ops)  # a bad token is refused even beside a staff session
    assert session.get(url, HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 403
    tokens.revoke(ops, staff_token.pk)
    assert Client().get(url, HTTP_AUTHORIZATION=f"Bearer {staff}").status_code == 401


def test_metrics__off_by_default_404(db, client, settings):
    with override_settings(WORKFLOWS={**settings.WORKFLOWS, "METRICS": False}):
        assert client.get(reverse("workflows:metrics"), **TOKEN).status_code == 404
    with override_settings(WORKFLOWS={**settings.WORKFLOWS, "METRICS_TOKEN": None}):
        assert client.get(reverse("workflows:metrics"), **TOKEN).status_code == 401  # no token configured


def test_metrics__runs_steps_durations_and_pools_after_a_run(engine_db, client):
    before = scrape(client)
    ok = observe_flows.observed_many.start({"value": 3})
    bad = observe_flows.observed_failing.start({"value": 1})
    drain()
    ok.refresh_from_db(), bad.refresh_from_db()
    assert (ok.status, bad.status) == ("succeeded", "failed")
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("workflows_runs_started_total", workflow="observed-many") == 1
    assert delta("workflows_runs_finished_total", workflow="observed-many", status="succeeded") == 1
    assert delta("workflows_runs_finished_total", workflow="observed-failing", status="failed") == 1
    assert delta("workflows_step_attempts_total", workflow="observed-many", outcome="succeeded") == 4
    assert delta("workflows_step_attempts_total", workflow="observed-failing", outcome="failed") == 1
    ran = {"workflow": "observed-many", "pool": "narrow", "outcome": "succeeded"}
    assert delta("workflows_step_duration_seconds_count", **ran) == 3  # the foreach items, in pool "narrow"
    assert delta("workflows_step_duration_seconds_bucket", **ran, le="+Inf") == 3
    failed = {"workflow": "observed-failing", "pool": "default", "outcome": "failed"}
    assert delta("workflows_step_duration_seconds_count", **failed) == 1
    assert delta("workflows_step_queue_wait_seconds_count", workflow="observed-many", pool="narrow") >= 1
    assert value(after, "workflows_pool_limit", pool="narrow") == 3
    assert value(after, "workflows_pool_running", pool="narrow") == 0
    assert ("workflows_pool_waiting", (("pool", "default"),)) in after


def test_metrics__recovery_actions_are_counted(engine_db, redis_conn):
    before = sampled("workflows_recovery_actions_total", action="requeued")
    run = observe_flows.observed.start({"value": 1})
    redis_conn.flushdb()  # its RQ job is lost: the step stays queued without one
    assert recovery.tick(requeue_after=0)["requeued"] == 1
    assert sampled("workflows_recovery_actions_total", action="requeued") - before == 1
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_metrics__websocket_connections_are_counted_and_gauged(engine_db, user):
    opened = sampled("workflows_websocket_connections_opened_total")
    open_now = sampled("workflows_websocket_connections")

    async def connect_and_close():
        comm = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/")
        comm.scope["user"] = user
        connected, _ = await comm.connect(timeout=5)
        assert connected
        try:
            return await database_sync_to_async(sampled)("workflows_websocket_connections")
        finally:
            await comm.disconnect()

    assert async_to_sync(connect_and_close)() - open_now == 1
    assert sampled("workflows_websocket_connections_opened_total") - opened == 1
    assert sampled("workflows_websocket_connections") == open_now


def test_metrics__a_check_warns_when_workers_counts_would_be_missed(settings, monkeypatch):
    from workflows.checks import check_metrics

    assert check_metrics(None) == []  # the test settings: a multiprocess directory
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    assert [m.id for m in check_metrics(None)] == ["workflows.W011"]
    settings.WORKFLOWS = {**settings.WORKFLOWS, "METRICS_DIR": "/tmp/somewhere"}
    assert check_metrics(None) == []
