"""The dashboard mounted at ``/wf/`` in a project with nothing else (tests/prefixed_urls.py), in Chromium against a
real daphne and workers: the websocket connects at ``/wf/ws/``, and the links, fetches and forms the scripts make
(new rows of the runs table, the cards' statistics, the step panel, the charts) all stay under the prefix.

The project has no login page, so the browser gets a session made by Django's test client.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.testapp import flows
from workflows.models import Run, RunStatus

from .conftest import SIMPLE, start_daphne

pytestmark = pytest.mark.e2e

LIVE_TIMEOUT = 30_000  # ms: a run's transitions, through workers and the websocket


@pytest.fixture
def prefixed_server(live) -> str:
    """A daphne serving ``project.asgi`` with tests/prefixed_settings.py (the dashboard at ``/wf/`` only); the API
    answering 401 (log in first) says Django is up under /wf/."""
    return start_daphne(live, "daphne-prefixed", "/wf/api/", 401, DJANGO_SETTINGS_MODULE="tests.prefixed_settings")


def test_prefix__live_updates_links_and_fetches_follow_the_prefix(
    browser, prefixed_server, e2e_user, start_workers, recovery_loop, shot
):
    server = f"{prefixed_server}/wf"
    client = Client()
    client.force_login(e2e_user)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": prefixed_server}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        first = flows.counter.start({"value": 1}, user=e2e_user)
        start_workers(1, SIMPLE)
        page.goto(f"{server}/")
        page.wait_for_selector("body[data-live=open]")  # connected: the socket is where the page said
        assert sockets and all(re.fullmatch(r"ws://127\.0\.0\.1:\d+/wf/ws/", url) for url in sockets), sockets
        assert page.locator("text=Log out").count() == 0  # the project has no logout page
        page.wait_for_selector(f'.wf-card[data-workflow=counter] [data-stat=last_run] a[href="/wf/runs/{first.pk}/"]')

        second = flows.counter.start({"value": 2}, user=e2e_user)  # shown live: a new row and the card's stats
        page.wait_for_selector(
            f'table[data-live-runs] tr[data-run="{second.pk}"] a.run-link[href="/wf/runs/{second.pk}/"]'
        )
        page.wait_for_selector(f'table[data-live-runs] tr[data-run="{second.pk}"] a[href="/wf/workflows/counter/"]')
        page.wait_for_selector(
            f'.wf-card[data-workflow=counter] [data-stat=last_run] a[href="/wf/runs/{second.pk}/"]',
            timeout=LIVE_TIMEOUT,
        )  # after a fetch of the API's workflows
        shot(page, "prefix-home", full_page=False)

        page.goto(f"{server}/workflows/counter/")
        page.wait_for_selector(f'#chart-durations a[href="/wf/runs/{first.pk}/"]', timeout=LIVE_TIMEOUT)
        page.fill("#f-input-value", "5")
        page.click("button[data-submit]")
        page.wait_for_url(re.compile(r"/wf/runs/\d+/$"))
        run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        page.wait_for_selector("#run-page[data-status=succeeded]", timeout=LIVE_TIMEOUT)
        page.locator('#run-graph g.node[data-step="increment"]').first.click()
        page.wait_for_selector("#step-panel .panel-head >> text=increment")  # fetched from the API under /wf/
        assert page.locator(f'#step-panel form[action="/wf/runs/{run_id}/restart/"]').count() == 1
        shot(page, "prefix-run")

        assert Run.objects.get(pk=run_id).status == RunStatus.SUCCEEDED
        assert not errors, errors
    finally:
        context.close()
