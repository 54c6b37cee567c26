"""The dashboard mounted under a prefix in a project with nothing else (tests/prefixed_urls.py: no login or logout
pages, no admin, no django-rq dashboard): every page, fragment and API answer renders, and every link, form, script,
fetch URL and the websocket URL they carry stays under the prefix (or the static files); nothing links to a view the
project does not have.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import override_settings

from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows.models import Run, RunStatus
from workflows.routing import websocket_path  # imported here: its routes are built for the test URLconf
from workflows.testing import drain
from workflows.web import links

pytestmark = pytest.mark.usefixtures("engine_db")
PREFIX = "/wf/"
ALLOWED = (PREFIX, "/static/")
JSON = {"HTTP_ACCEPT": "application/json"}
prefixed = override_settings(ROOT_URLCONF="tests.prefixed_urls")


class _Links(HTMLParser):
    """Every URL-valued attribute: href, action, src, formaction and data-…-url, as (tag, attribute, value)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is not None and (
                name in ("href", "action", "src", "formaction") or re.fullmatch(r"data-.*url", name)
            ):
                self.found.append((tag, name, value))


def url_attributes(html: str) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.found


def outside(page: str, html: str) -> list[tuple[str, str, str]]:
    """The URL attributes of ``html`` (served at ``page``) that point outside the prefix and the static files."""
    bad = []
    for tag, name, value in url_attributes(html):
        if value.startswith("data:"):  # an inline image (the favicon)
            continue
        target = urlsplit(urljoin(f"http://testserver{page}", value))
        if target.netloc != "testserver" or not target.path.startswith(ALLOWED):
            bad.append((tag, name, value))
    return bad


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")


@pytest.fixture
def runs(user, staff):
    """Runs in every state a page shows differently, started by alice (and one by staff)."""
    made = {
        "nested": cf.parent.start({"value": 1}, user=user),  # related runs, a graph node linking to a workflow
        "failed": flows.failing.start({"value": 1}, user=user),  # error, retry and restart forms
        "suspended": cf.reviewed.start({"value": 3}, user=user),  # a resume form
        "event": cf.approval.start({"value": 1}, user=user),  # a send-event form
        "staff": flows.counter.start({"value": 1}, user=staff),
    }
    drain()
    made["child"] = Run.objects.filter(parent_step__run=made["nested"]).get()
    return made


def _pages(runs: dict[str, Run]) -> list[str]:
    pages = [PREFIX, f"{PREFIX}runs/", f"{PREFIX}runs/?workflow=parent", f"{PREFIX}runs/?status=failed"]
    pages += [f"{PREFIX}workflows/{name}/" for name in ("parent", "child", "counter", "reviewed", "approval")]
    for run in runs.values():
        pages += [f"{PREFIX}runs/{run.pk}/", f"{PREFIX}runs/{run.pk}/?fragment=actions"]
        pages += [f"{PREFIX}runs/{run.pk}/?fragment=summary"]
    return pages


@prefixed
@pytest.mark.parametrize("who", ["alice", "staff"])
def test_prefix__every_page_renders_and_links_only_under_the_prefix(client, user, staff, runs, who):
    client.force_login(user if who == "alice" else staff)
    for page in _pages(runs):
        if who == "alice" and str(runs["staff"].pk) in page:
            assert client.get(page).status_code == 404, page  # not alice's to see
            continue
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert url_attributes(html), page
        assert outside(page, html) == [], page
    home = client.get(PREFIX).content.decode()
    for name in ("Admin", "Queues", "Log out"):  # the project has no admin, no django-rq, no logout page
        assert f">{name}<" not in home


@prefixed
def test_prefix__links_point_at_the_prefixed_pages(client, user, runs):
    client.force_login(user)
    nested, child = runs["nested"], runs["child"]
    html = client.get(f"{PREFIX}runs/{nested.pk}/").content.decode()
    assert f'href="{PREFIX}runs/{child.pk}/"' in html  # the child run, under related runs
    assert f'href="{PREFIX}workflows/parent/"' in html
    graph = client.get(f"{PREFIX}workflows/parent/").content.decode()
    assert f'href="{PREFIX}workflows/child/"' in graph  # the nested workflow's node in the graph
    body = re.search(r"<body[^>]*>", html)[0]
    assert f'data-run-url="{PREFIX}runs/{{id}}/"' in body and f'data-workflow-url="{PREFIX}workflows/{{name}}/"' in body
    assert f'data-api-workflows-url="{PREFIX}api/workflows/"' in body
    data = json.loads(re.search(r'<script id="run-data" type="application/json">(.*?)</script>', html, re.S)[1])
    assert data["urls"] == {
        "api": f"{PREFIX}api/runs/{nested.pk}/",
        "page": f"{PREFIX}runs/{nested.pk}/",
        "step": f"{PREFIX}api/runs/{nested.pk}/steps/{{path}}/",
        "restart": f"{PREFIX}runs/{nested.pk}/restart/",
        "history": f"{PREFIX}runs/{nested.pk}/history/",
        "value": f"{PREFIX}api/runs/{nested.pk}/values/",  # + a journal event's "$ref": a large value
    }
    actions = client.get(f"{PREFIX}runs/{runs['failed'].pk}/?fragment=actions").content.decode()
    for action in ("retry", "restart"):
        assert f'action="{PREFIX}runs/{runs["failed"].pk}/{action}/"' in actions
    assert (
        f'action="{PREFIX}runs/{runs["suspended"].pk}/resume/"'
        in client.get(f"{PREFIX}runs/{runs['suspended'].pk}/?fragment=actions").content.decode()
    )


@prefixed
def test_prefix__the_page_carries_the_websocket_url_under_the_prefix(client, user):
    client.force_login(user)
    html = client.get(PREFIX).content.decode()
    assert 'data-live-url="/wf/ws/"' in html
    assert websocket_path() == "wf/ws/"  # where workflows.routing serves the socket for this URLconf


@prefixed
def test_prefix__forms_and_actions_answer_with_prefixed_urls(client, user, runs):
    client.force_login(user)
    launched = client.post(f"{PREFIX}workflows/counter/", {"input.value": "1"})
    run = Run.objects.filter(workflow__name="counter", created_by=user).get()
    assert launched.status_code == 302 and launched["Location"] == f"{PREFIX}runs/{run.pk}/"
    as_json = client.post(f"{PREFIX}workflows/counter/", {"input.value": "2"}, **JSON).json()
    assert as_json["ok"] and as_json["redirect"].startswith(f"{PREFIX}runs/")
    retried = client.post(f"{PREFIX}runs/{runs['failed'].pk}/retry/", **JSON).json()
    assert retried["ok"] and retried["redirect"].startswith(f"{PREFIX}runs/")
    refused = client.post(f"{PREFIX}runs/{runs['nested'].pk}/resume/", {"step": "x"})  # without JavaScript
    assert refused.status_code == 302 and refused["Location"] == f"{PREFIX}runs/{runs['nested'].pk}/"


def _urls_in(value, key: str = "") -> list[str]:
    """The URLs an API answer gives: under "urls", "next", "previous", and the index's links."""
    if isinstance(value, dict):
        return [u for k, v in value.items() for u in _urls_in(v, k)]
    if isinstance(value, list):
        return [u for v in value for u in _urls_in(v, key)]
    return [value] if isinstance(value, str) and value.startswith("/") else []


@prefixed
def test_prefix__the_api_answers_under_the_prefix_with_prefixed_urls(client, user, runs):
    client.force_login(user)
    nested = runs["nested"]
    for url in (
        f"{PREFIX}api/",
        f"{PREFIX}api/workflows/",
        f"{PREFIX}api/workflows/parent/",
        f"{PREFIX}api/workflows/parent/runs/",
        f"{PREFIX}api/runs/?limit=1",
        f"{PREFIX}api/runs/{nested.pk}/",
        f"{PREFIX}api/runs/{nested.pk}/events/",
        f"{PREFIX}api/runs/{nested.pk}/steps/increment/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        found = _urls_in(response.json())
        assert all(u.startswith(PREFIX) for u in found), (url, found)
    listed = client.get(f"{PREFIX}api/runs/?limit=1").json()
    assert listed["next"].startswith(f"{PREFIX}api/runs/?")
    assert listed["runs"][0]["urls"]["page"].startswith(f"{PREFIX}runs/")
    client.logout()
    anonymous = client.get(f"{PREFIX}api/runs/")
    assert anonymous.status_code == 401 and "error" in anonymous.json()


@prefixed
def test_links__url_template_and_url_or_none_follow_the_urlconf(runs):
    assert links.url_template("workflows:run", "{id}") == f"{PREFIX}runs/{{id}}/"
    assert links.url_template("workflows:workflow", "{name}") == f"{PREFIX}workflows/{{name}}/"
    assert (
        links.url_template("workflows:api-run-step", 918273645, "{path}")
        == f"{PREFIX}api/runs/918273645/steps/{{path}}/"
    )
    assert links.url_or_none("workflows:run", 7) == f"{PREFIX}runs/7/"
    assert links.url_or_none("logout") is None and links.url_or_none("admin:index") is None
    assert links.queues_url() is None
    assert links.live_url() == f"{PREFIX}ws/"


# --- the demo site, at "/", with its login pages, admin and django-rq dashboard ---------------------------------


def test_demo__staff_see_the_admin_and_queues_links_and_everyone_a_logout_form(client, user, staff):
    client.force_login(staff)
    html = client.get("/").content.decode()
    assert 'data-live-url="/ws/"' in html
    assert 'href="/admin/">Admin<' in html and 'href="/admin/rq/">Queues<' in html
    assert 'action="/accounts/logout/"' in html
    client.force_login(user)
    html = client.get("/").content.decode()
    assert ">Admin<" not in html and ">Queues<" not in html and 'action="/accounts/logout/"' in html


def test_demo__the_admin_loads_the_apps_badge_styles(client, staff):
    run = flows.failing.start({"value": 1}, user=staff)
    drain()
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    client.force_login(staff)
    for url in ("/admin/workflows/run/", f"/admin/workflows/run/{run.pk}/change/", "/admin/workflows/steprun/"):
        html = client.get(url).content.decode()
        assert "/static/workflows/admin.css" in html, url
        assert 'class="wf-badge wf-status-failed"' in html, url
