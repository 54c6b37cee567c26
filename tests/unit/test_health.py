"""<prefix>/health/live and <prefix>/health/ready: no login, no detail, 503 while Redis is down or a migration is
not applied."""

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import override_settings
from django.urls import reverse

from workflows.devserver import redis_server

pytestmark = pytest.mark.django_db


def test_paths_are_the_documented_ones():
    assert reverse("workflows:health-live") == "/health/live"
    assert reverse("workflows:health-ready") == "/health/ready"


def test_live_needs_no_login(client):
    response = client.get(reverse("workflows:health-live"))
    assert (response.status_code, response.content, response["Content-Type"]) == (200, b"ok", "text/plain")


def test_ready_when_all_is_well_needs_no_login_and_is_not_rate_limited(client, redis_conn):
    for _ in range(30):  # a probe every second for half a minute: never limited
        response = client.get(reverse("workflows:health-ready"))
        assert (response.status_code, response.content) == (200, b"ok")
    assert "Set-Cookie" not in response.headers and "no-cache" in response["Cache-Control"]


def test_only_get_and_head(client):
    assert client.head(reverse("workflows:health-ready")).status_code == 200
    assert client.post(reverse("workflows:health-live")).status_code == 405


def test_ready_is_503_while_redis_is_down(client, tmp_path, caplog):
    proc, url = redis_server.start(tmp_path, appendonly=False)
    try:
        with override_settings(WORKFLOWS={**settings.WORKFLOWS, "REDIS_URL": url}):
            assert client.get(reverse("workflows:health-ready")).status_code == 200
            proc.terminate()
            proc.wait(30)
            response = client.get(reverse("workflows:health-ready"))
    finally:
        proc.kill()
        proc.wait()
    assert (response.status_code, response.content, response["Content-Type"]) == (503, b"not ready", "text/plain")
    assert "redis check failed" in caplog.text  # the reason is logged, not sent


@pytest.mark.django_db(transaction=True)
def test_ready_is_503_with_a_migration_not_applied(client, redis_conn):
    executor = MigrationExecutor(connection)
    leaf = max(name for app, name in executor.loader.graph.leaf_nodes() if app == "workflows")
    previous = executor.loader.graph.node_map[("workflows", leaf)].parents
    (before,) = [p.key[1] for p in previous if p.key[0] == "workflows"]
    call_command("migrate", "workflows", before, verbosity=0)
    try:
        response = client.get(reverse("workflows:health-ready"))
        assert (response.status_code, response.content) == (503, b"not ready")
    finally:
        call_command("migrate", "workflows", verbosity=0)
    assert client.get(reverse("workflows:health-ready")).status_code == 200


def test_the_dashboard_still_needs_a_login(client):
    assert client.get(reverse("workflows:operations")).status_code == 302


@override_settings(ROOT_URLCONF="tests.prefixed_urls")
def test_under_a_prefix(client, redis_conn):
    assert reverse("workflows:health-live") == "/wf/health/live"
    assert client.get("/wf/health/live").content == b"ok"
    assert client.get("/wf/health/ready").status_code == 200
