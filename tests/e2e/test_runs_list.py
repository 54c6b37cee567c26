"""The runs list and the phone layout in Chromium (issue 19, points 3 and 6), against a real daphne, real RQ
workers and Redis. Screenshots: runs-error-and-statuses, runs-search, runs-bulk, launch-again, home-empty,
phone-runs, phone-run-vertical, phone-workflow-vertical."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from examples import flows as examples
from tests.testapp import flows
from workflows.models import Run, RunStatus

from .conftest import SIMPLE, wait_for
from .test_dashboard import LIVE_TIMEOUT, login, wait_live

pytestmark = pytest.mark.e2e


def _terminal(*runs: Run) -> bool:
    return all(Run.objects.get(pk=r.pk).status in ("succeeded", "failed", "canceled") for r in runs)


def until(page, js: str, timeout_ms: int = LIVE_TIMEOUT) -> None:
    """Poll ``js`` (an expression) until it is true (the site's CSP forbids ``wait_for_function``'s eval)."""
    for _ in range(timeout_ms // 100):
        if page.evaluate(js):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"never true: {js}")


def _row(page, run: Run) -> str:
    return f"tbody tr[data-run='{run.pk}']"


def test_runs_list__errors_statuses_search_live_total_bulk_actions_and_launch_again(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    start_workers(1, SIMPLE)
    failed = flows.failing.start({"value": 7}, user=e2e_user)
    paid = examples.flaky_payment.start({"order_id": "Zürich-7"}, user=e2e_user)
    wait_for(lambda: _terminal(failed, paid), 90, 0.2, what="the failing and the flaky runs to end")
    long1 = examples.long_task.start({"seconds": 300}, user=e2e_user)  # one holds the worker, one waits
    long2 = examples.long_task.start({"seconds": 300}, user=e2e_user)

    page = new_page()
    login(page, server, e2e_user)
    wait_live(page)
    # the error column: type and message, the whole on hover
    error = page.locator(f"{_row(page, failed)} [data-cell=error] .run-error")
    assert "ValueError" in error.inner_text() and "boom 7" in error.inner_text()
    assert error.get_attribute("title") == "ValueError: boom 7"
    assert page.locator(f"{_row(page, paid)} [data-cell=error]").inner_text() == ""
    # the live total follows runs started elsewhere
    assert page.inner_text("[data-live-count]") == "4"
    extra = flows.counter.start({"value": 1}, user=e2e_user)
    page.wait_for_selector(_row(page, extra), timeout=LIVE_TIMEOUT)
    until(page, "document.querySelector('[data-live-count]').textContent === '5'")

    # several statuses at once, in the URL
    page.check(".status-choices input[value=failed]")
    page.check(".status-choices input[value=canceled]")
    page.click(".filters button[type=submit]")
    page.wait_for_url(re.compile(r"status="))
    assert parse_qs(urlparse(page.url).query)["status"] == ["failed", "canceled"]
    assert page.locator("tbody tr[data-run]").count() == 1 and page.locator(_row(page, failed)).count() == 1
    assert page.inner_text("[data-live-count]") == "1"
    shot(page, "runs-error-and-statuses")

    # a search over input values
    page.goto(f"{server}/runs/")
    page.fill("#filter-q", "zürich")
    page.click(".filters button[type=submit]")
    page.wait_for_url(re.compile(r"q="))
    assert [page.locator("tbody tr[data-run]").nth(0).get_attribute("data-run")] == [str(paid.pk)]
    assert page.locator("tbody tr[data-run]").count() == 1
    shot(page, "runs-search")

    # bulk cancel: the two long runs are canceled, the finished one is reported
    page.goto(f"{server}/runs/")
    wait_live(page)
    assert page.locator("[data-bulk-action]").first.is_disabled()  # nothing selected yet
    for run in (long1, long2, paid):
        page.check(f"{_row(page, run)} input[name=run]")
    assert page.inner_text("[data-bulk-count]") == "3 selected"
    page.click("[data-bulk-action][value=cancel]")
    page.wait_for_selector("[data-bulk-results]:not([hidden])", timeout=LIVE_TIMEOUT)
    results = page.inner_text("[data-bulk-results]")
    assert "2 runs canceled; 1 could not be" in results and "already succeeded" in results
    for run in (long1, long2):
        page.wait_for_selector(f"{_row(page, run)}[data-status=canceled]", timeout=LIVE_TIMEOUT)
    assert (
        Run.objects.get(pk=long1.pk).status == RunStatus.CANCELED and Run.objects.get(pk=paid.pk).status == "succeeded"
    )
    shot(page, "runs-bulk")

    # bulk retry: a new run appears live, and the total with it
    page.check(f"{_row(page, long1)} input[name=run]")
    page.click("[data-bulk-action][value=retry]")
    page.wait_for_selector("[data-bulk-results] >> text=1 run retried", timeout=LIVE_TIMEOUT)
    retried = Run.objects.get(restarted_from=long1)
    page.wait_for_selector(_row(page, retried), timeout=LIVE_TIMEOUT)
    until(page, "document.querySelector('[data-live-count]').textContent === '6'")

    # launch again from a run page, with its input edited
    page.goto(f"{server}/runs/{long2.pk}/")
    page.click("a[data-action=launch-again]")
    page.wait_for_url(re.compile(rf"/workflows/long-task/\?from_run={long2.pk}"))
    assert page.input_value("#f-input-seconds") == "300"
    assert page.locator(f"[data-from-run='{long2.pk}']").is_visible()
    shot(page, "launch-again")
    page.fill("#f-input-seconds", "2")
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    again = Run.objects.get(pk=int(page.url.rstrip("/").rsplit("/", 1)[1]))
    assert again.input == {"seconds": 2} and again.pk not in (long1.pk, long2.pk, retried.pk)
    assert not page.errors, page.errors


def test_phone__run_tables_as_cards_graph_top_to_bottom_tap_scrolls_to_the_panel_and_no_clipped_header(
    new_page, server, e2e_user, shot
):
    # the home page with no runs, on a laptop: "Recent runs" is whole
    page = new_page()
    login(page, server, e2e_user)
    page.goto(f"{server}/")
    recent = page.locator(".recent")
    clipped = page.evaluate(
        """() => [...document.querySelectorAll('.recent, .recent .table-wrap, .recent .section-head')]
             .filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => el.className)"""
    )
    assert clipped == [], f"clipped at 1366 px: {clipped}"
    head, box = page.locator("#recent-heading").bounding_box(), recent.bounding_box()
    assert head["x"] >= box["x"] and head["x"] + head["width"] <= box["x"] + box["width"]
    assert page.locator(".recent .empty-row").is_visible()
    shot(page, "home-empty", full_page=False)

    runs = [examples.trip_planner.start({"city": f"Lima {i}"}, user=e2e_user) for i in range(3)]  # no worker: pending
    phone = new_page(viewport=(390, 844), is_mobile=True, has_touch=True)
    login(phone, server, e2e_user)
    wait_live(phone)
    card = phone.locator(f"tbody tr[data-run='{runs[0].pk}']")
    assert card.evaluate("(tr) => getComputedStyle(tr).display") == "block"
    assert phone.locator("thead th:not(.col-select)").first.is_hidden()
    assert card.locator("[data-cell=status]").evaluate("(td) => getComputedStyle(td, '::before').content") == '"Status"'
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the runs list scrolls sideways on a phone ({width}px wide)"
    shot(phone, "phone-runs")

    phone.goto(f"{server}/runs/{runs[0].pk}/")
    wait_live(phone)
    assert phone.locator("#run-graph").is_hidden() and phone.locator("#run-graph-vertical").is_visible()
    w, h = phone.locator("#run-graph-vertical svg").evaluate(
        "(svg) => [svg.viewBox.baseVal.width, svg.viewBox.baseVal.height]"
    )
    assert h > w, "the graph runs top to bottom on a phone"
    twin = phone.locator('#run-graph-vertical g.node[data-step="locate"]')  # mirrors the live wide graph
    assert twin.get_attribute("data-status") == phone.locator('#run-graph g.node[data-step="locate"]').get_attribute(
        "data-status"
    ) and twin.get_attribute("data-status") in ("pending", "queued")
    assert phone.evaluate("window.scrollY") == 0
    phone.locator('#run-graph-vertical g.node[data-step="weather"]').tap()
    phone.wait_for_selector("#step-panel-heading:has-text('weather')")
    # scrolled to the panel: its top in view (at the top of the screen, unless the page ends first)
    until(
        phone,
        "(() => { const t = document.getElementById('step-panel').getBoundingClientRect().top;"
        " return t > -2 && t < innerHeight - 150; })()",
    )
    assert phone.evaluate("window.scrollY") > 0
    assert phone.locator('#run-graph-vertical g.node[data-step="weather"]').get_attribute("class").find("selected") >= 0
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.evaluate("window.scrollTo(0, 0)")
    shot(phone, "phone-run-vertical", full_page=False)

    phone.goto(f"{server}/workflows/trip-planner/")
    assert phone.locator(".graph-phone svg.graph-vertical").is_visible() and phone.locator(".graph-scroll").is_hidden()
    shot(phone, "phone-workflow-vertical", full_page=False)
    assert not phone.errors and not page.errors, phone.errors + page.errors
