"""Error pages in the dashboard's layout: the app's own 403 and 404 (whatever the project's handlers are), and the
demo project's handlers pointing at the app's 403, 404 and 500 (project/urls.py)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.test import Client, RequestFactory, override_settings

from tests.testapp import flows
from workflows.models import Run, RunStatus
from workflows.web import errors

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}
NAV = '<nav class="mainnav" aria-label="Main">'


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def test_404__an_unknown_run_is_a_page_in_the_dashboards_layout(alice):
    response = alice.get("/runs/999999/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "workflows/404.html" in [t.name for t in response.templates]
    assert NAV in html and 'href="/runs/"' in html and "Page not found" in html
    assert "<title>Not found · Workflows</title>" in html


def test_404__another_users_run_reads_like_a_missing_one(alice, bob):
    run = flows.counter.start({"value": 1}, user=bob)
    hidden, missing = alice.get(f"/runs/{run.pk}/"), alice.get("/runs/999999/")
    assert hidden.status_code == missing.status_code == 404
    main = [r.content.decode().split("<main", 1)[1] for r in (hidden, missing)]
    assert main[0].replace(f"/runs/{run.pk}/", "/runs/N/") == main[1].replace("/runs/999999/", "/runs/N/")


def test_404__the_api_and_the_scripts_still_get_json(alice):
    response = alice.get("/runs/999999/", **JSON)
    assert response.status_code == 404 and response.json()["ok"] is False
    assert alice.get("/api/runs/999999/").headers["Content-Type"].startswith("application/json")


def test_403__a_viewer_posting_an_action_on_another_users_run_gets_the_403_page(alice, bob, user):
    user.user_permissions.add(Permission.objects.get(codename="view_all_runs"))  # may see, may not change
    run = flows.counter.start({"value": 1}, user=bob)
    response = alice.post(f"/runs/{run.pk}/cancel/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "workflows/403.html" in [t.name for t in response.templates]
    assert NAV in html and "Not allowed" in html and "may see this run but not change it" in html
    assert Run.objects.get(pk=run.pk).status != RunStatus.CANCELED


def test_403__the_app_uses_its_page_under_a_project_without_handlers(alice):
    """tests/prefixed_urls.py sets no handler403/404: the app's pages answer with its own layout all the same."""
    with override_settings(ROOT_URLCONF="tests.prefixed_urls"):
        response = alice.post("/wf/pools/", {"pool": "default", "action": "pause"})
        missing = alice.get("/wf/runs/999999/")
    assert response.status_code == 403 and "Changing a pool needs staff status" in response.content.decode()
    assert "workflows/403.html" in [t.name for t in response.templates]
    assert missing.status_code == 404 and 'href="/wf/runs/"' in missing.content.decode()


def test_404__the_demo_projects_handler_styles_pages_outside_the_app(alice):
    response = alice.get("/accounts/no-such-page/")
    assert response.status_code == 404 and NAV in response.content.decode()


def test_500__the_demo_handler_renders_the_page_without_a_query_or_a_user(user, monkeypatch, django_assert_num_queries):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("workflows.web.views.queries.workflow_stats", broken)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 500
    assert NAV in html and "Server error" in html and 'href="/runs/"' in html and "boom" not in html

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    with django_assert_num_queries(0):  # the page renders with the database gone, or the session broken
        direct = errors.server_error(request)
    assert direct.status_code == 500 and direct.content.decode() == html
