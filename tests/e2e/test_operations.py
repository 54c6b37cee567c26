"""The operations page in Chromium: a worker and a recovery loop appear from their heartbeats, the step a worker
takes shows on its row while the page stays loaded, and a killed worker turns "gone" live."""

from __future__ import annotations

import pytest

from .conftest import PASSWORD, SIMPLE, start_daphne

pytestmark = pytest.mark.e2e

BEAT = {"WORKFLOWS_PROCESS_HEARTBEAT_SECONDS": "0.5"}
LIVE_TIMEOUT = 60_000  # ms: a beat, a refresh and a loaded machine


@pytest.fixture
def server(live) -> str:
    """daphne judging beats at the workers' period; ready when its own readiness endpoint says so."""
    return start_daphne(live, "daphne", "/health/ready", 200, **BEAT)


def test_operations_page_shows_workers_and_loops_live(new_page, server, e2e_admin, live, shot):
    from examples import flows as examples

    worker = live.worker(SIMPLE, env=BEAT)
    loop = live.recovery(env=BEAT)
    page = new_page()
    page.goto(f"{server}/operations/")
    page.fill("#id_username", e2e_admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/operations/")
    row = f'#workers tr[data-pid="{worker.pid}"]'
    page.wait_for_selector(f'{row}[data-alive="true"]', timeout=LIVE_TIMEOUT)
    page.wait_for_selector(f'#recovery tr[data-pid="{loop.pid}"][data-alive="true"]', timeout=LIVE_TIMEOUT)

    page.evaluate("window.__sameLoad = true")  # gone after a reload: proves the changes below come live
    run = examples.long_task.start({"seconds": 300}, user=e2e_admin)  # the worker takes it: its row says so
    page.wait_for_selector(f'{row} a[href$="/runs/{run.pk}/"]', timeout=LIVE_TIMEOUT)
    page.wait_for_selector('#versions tr[data-workflow="long-task"]', timeout=LIVE_TIMEOUT)
    shot(page, "operations")

    worker.kill()  # no clean exit: it misses its beats and is shown as gone, without a reload
    page.wait_for_selector(f'{row}[data-alive="false"]', timeout=LIVE_TIMEOUT)
    assert "gone" in page.locator(row).inner_text()
    assert page.evaluate("window.__sameLoad") is True
    assert not page.errors, page.errors
