"""Accessibility: axe-core (from npm: tests/e2e/package.json, installed by ``make venv`` with ``npm ci``) run in
Chromium on every dashboard page; any serious or critical violation fails the test.

Add a page by adding a row to ``PAGES`` (its path may name the ids that the ``ids`` fixture makes:
``{digest}``, ``{agent}``, ``{schedule}``…). The 500 page cannot be made to happen on a healthy server: the test
serves the demo's handler's HTML at a URL of the site, with the site's stylesheet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import RequestFactory

from examples import flows as examples
from examples.support_desk import support_desk
from tests.conftest import skip_or_fail
from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows.engine import schedule_admin
from workflows.models import RunStatus
from workflows.web import errors

from .conftest import PASSWORD, SIMPLE
from .test_dashboard import LIVE_TIMEOUT

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = {"serious", "critical"}

# (name, path, what to wait for): every page of the dashboard, logged in unless the name starts with "anonymous"
PAGES: list[tuple[str, str, str]] = [
    ("anonymous-login", "/accounts/login/", "#id_username"),
    ("home", "/", ".wf-card"),
    ("workflow-with-launch-form", "/workflows/trip-planner/", "button[data-submit]"),
    ("workflow-with-schedules", "/workflows/counter/", "#schedules"),
    ("runs", "/runs/", "table"),
    ("runs-filtered", "/runs/?status=failed", "table"),
    ("runs-statuses-search", "/runs/?status=failed&status=succeeded&q=a", "table"),
    ("operations", "/operations/", "main h1"),
    ("workflow-launch-again", "/workflows/research-digest/?from_run={digest}", "button[data-submit]"),
    ("run-succeeded-graph", "/runs/{digest}/", "#run-graph g.node"),
    ("run-failed", "/runs/{failed}/", "#run-graph g.node"),
    ("run-suspended-resume-form", "/runs/{suspended}/", "#run-graph g.node"),
    ("run-waiting-timer", "/runs/{sleeping}/", "#run-graph g.node"),
    ("run-agent-conversation-approval", "/runs/{agent}/", "section[data-approval]"),
    ("pools", "/pools/", "main h1"),
    ("tokens", "/tokens/", "main h1"),
    ("schedule", "/schedules/{schedule}/", "main h1"),
    ("schedule-new", "/workflows/counter/schedules/new/", "main form"),
    ("error-404", "/runs/999999999/", "main h1"),
    ("error-403", "POST /runs/{others}/cancel/", "main h1"),
    ("error-500", "/__error-500__/", "main h1"),
]


def axe_source() -> str:
    if not AXE.exists():
        skip_or_fail(f"{AXE} is missing: run `make venv` (npm ci in tests/e2e)")
    return AXE.read_text()


def check(page, source: str) -> list[dict]:
    """axe's serious and critical violations on the page as it is now (each with the nodes it names)."""
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(source)  # through DevTools, so the site's Content-Security-Policy does not apply
    result = page.evaluate("async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))")
    violations = json.loads(result)["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in violations
        if v["impact"] in FAILING_IMPACTS
    ]


def login(page, server: str, username: str) -> None:
    page.goto(f"{server}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")


@pytest.fixture
def ids(django_user_model, e2e_user, start_workers, recovery_loop) -> dict[str, int]:
    """A run of each kind for ``e2e_user`` (finished by real workers), a schedule, and another user's run."""
    other = django_user_model.objects.create_user("olga", password=PASSWORD)
    digest = examples.research_digest.start({"topics": ["a", "b"], "quality": 0.6}, user=e2e_user)
    failed = flows.failing.start({"value": 1}, user=e2e_user)
    suspended = cf.reviewed.start({"value": 3}, user=e2e_user)
    sleeping = cf.long_nap.start({"value": 1}, user=e2e_user)
    agent = support_desk.start({}, user=e2e_user)  # the demo's scripted models: suspends for a refund approval
    others = flows.counter.start({"value": 1}, user=other)
    start_workers(1, SIMPLE)
    expected = {digest: RunStatus.SUCCEEDED, failed: RunStatus.FAILED, suspended: RunStatus.SUSPENDED}
    for run, status in {**expected, agent: RunStatus.SUSPENDED}.items():
        assert run.wait(90).status == status
    schedule = schedule_admin.create("counter", {"cron": "0 7 * * 1", "input": {"value": 2}, "name": "weekly"})
    return {
        "digest": digest.pk,
        "failed": failed.pk,
        "suspended": suspended.pk,
        "sleeping": sleeping.pk,
        "agent": agent.pk,
        "others": others.pk,
        "schedule": schedule.pk,
    }


def visit(page, server: str, path: str) -> None:
    """GET ``path``, or POST it (``"POST /path"``) as a form from a page of the site would, with its CSRF token."""
    if not path.startswith("POST "):
        page.goto(f"{server}{path}")
        return
    page.goto(f"{server}/")
    page.evaluate(
        """(action) => {
            const form = document.createElement("form");
            form.method = "post"; form.action = action;
            form.appendChild(document.querySelector("input[name=csrfmiddlewaretoken]").cloneNode());
            document.body.appendChild(form); form.submit();
        }""",
        path.removeprefix("POST "),
    )
    page.wait_for_url(f"{server}{path.removeprefix('POST ')}")


def test_axe__every_dashboard_page_has_no_serious_or_critical_violation(new_page, server, e2e_user, ids, shot):
    source = axe_source()
    # sees another user's run but may not change it; may change schedules (the new-schedule form)
    e2e_user.user_permissions.add(*_permissions("view_all_runs", "change_schedule"))
    html_500 = errors.server_error(RequestFactory().get("/")).content
    found: dict[str, list[dict]] = {}
    for anonymous in (True, False):
        page = new_page()
        page.route(f"{server}/__error-500__/", lambda route: route.fulfill(status=500, body=html_500))
        if not anonymous:
            login(page, server, e2e_user.username)
        for name, path, ready in PAGES:
            if name.startswith("anonymous") != anonymous:
                continue
            visit(page, server, path.format(**ids))
            page.wait_for_selector(ready, timeout=LIVE_TIMEOUT)
            if page.locator("#run-page").count():
                page.wait_for_selector("#run-page[data-subscribed='1']", timeout=LIVE_TIMEOUT)
            found[name] = check(page, source)
            shot(page, f"a11y-{name}", full_page=False)
    assert len(found) == len(PAGES)
    bad = {name: v for name, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1)


def test_graph_nodes__reached_by_tab_are_named_buttons_with_a_visible_focus_ring(new_page, server, e2e_user, ids, shot):
    page = new_page()
    login(page, server, e2e_user.username)
    page.goto(f"{server}/runs/{ids['digest']}/")
    first = page.locator("#run-graph g.node").first
    first.wait_for()
    assert first.get_attribute("role") == "button" and first.get_attribute("aria-label")
    first.focus()
    page.keyboard.press("Tab")  # keyboard focus (:focus-visible) on the next node
    focused = page.locator("#run-graph g.node:focus-visible")
    assert focused.count() == 1
    ring = focused.evaluate("(g) => { const s = getComputedStyle(g); return [s.outlineStyle, s.outlineWidth]; }")
    assert ring[0] != "none" and float(ring[1].removesuffix("px")) >= 2, ring
    shot(page, "a11y-graph-focus-ring", full_page=False)


def _permissions(*codenames: str):
    return Permission.objects.filter(codename__in=codenames)
