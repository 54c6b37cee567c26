"""Issue 19, points 1, 4 and 5 in Chromium: the run page's event history (live, filtered, who acted, log levels,
retry waits, reused steps), the same times live as after a reload, a graph that fits 1366 px, labels for made-up
ids, a plain "connection lost" state, and the launch form's used idempotency key and first-step form."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from examples import flows as examples
from workflows.models import Run, RunStatus

from .conftest import SIMPLE, wait_for
from .test_dashboard import LIVE_TIMEOUT, login, wait_live

pytestmark = pytest.mark.e2e


def history_rows(page, selector: str = "#history-list > li:not([hidden])") -> list[str]:
    return page.locator(selector).all_inner_texts()


def seconds(text: str) -> float:
    """ "2.0 s" / "410 ms" -> seconds."""
    value, unit = text.split()
    return float(value) / (1000 if unit == "ms" else 1)


def step_row(page, path: str) -> dict:
    row = page.locator(f'#steps-table tr[data-path="{path}"]')
    return {
        "started": row.locator("time").get_attribute("datetime"),
        "took": row.locator("td").nth(4).inner_text(),
        "text": row.inner_text(),
    }


def test_history__live_filtered_nested_times_fit_labels_and_a_restart_that_reuses(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    start_workers(1, SIMPLE)
    page = new_page()  # 1366 x 900
    login(page, server, e2e_user)
    run = examples.research_digest.start({"topics": ["queues", "retries", "timers"], "quality": 0.9}, user=e2e_user)
    page.goto(f"{server}/runs/{run.pk}/")
    wait_live(page)
    page.wait_for_selector("#history[data-loaded='1']")
    page.wait_for_selector("#run-page[data-status=succeeded]", timeout=LIVE_TIMEOUT * 2)  # every event came live
    child = Run.objects.get(parent_step__run=run)

    # the history: every journal event in order, with times from the start and who started it
    wait_for(lambda: len(history_rows(page)) == Run.objects.get(pk=run.pk).last_seq, 15, what="every event listed")
    rows = history_rows(page)
    assert "run_created" in rows[0] and "by erin" in rows[0] and rows[0].lstrip().startswith("+")
    assert any("run_succeeded" in r for r in rows[-3:])
    page.select_option("#history-kind", "step_log")
    logs = history_rows(page)
    assert logs and all("step_log" in r for r in logs)
    assert any("read 3 sources about queues" in r and "sources=3" in r for r in logs)  # ctx.log's fields
    page.select_option("#history-kind", "")
    page.select_option("#history-level", "warning")
    warnings = history_rows(page)
    assert warnings and all("warning" in r.lower() and "revised" in r for r in warnings)  # 0.55 and 0.75, under 0.9
    page.select_option("#history-level", "")
    page.select_option("#history-step", "write_draft")
    assert history_rows(page) and all("write_draft" in r for r in history_rows(page))
    page.select_option("#history-step", "")
    page.locator("#history").scroll_into_view_if_needed()
    shot(page, "run-history")

    # the nested workflow's step: the same start and duration live as after a reload
    nested = (
        page.locator("#steps-table tr[data-path]").filter(has_text="publish-digest").first.get_attribute("data-path")
    )
    live = step_row(page, nested)
    # the graph fits a 1366 px screen: no sideways scrolling
    assert page.evaluate(
        "() => { const g = document.getElementById('run-graph'); return g.scrollWidth <= g.clientWidth + 1; }"
    )
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    page.reload()
    wait_live(page)
    reloaded = step_row(page, nested)
    assert abs(
        dt.datetime.fromisoformat(live["started"]) - dt.datetime.fromisoformat(reloaded["started"])
    ) < dt.timedelta(seconds=0.5), (live, reloaded)
    assert abs(seconds(live["took"]) - seconds(reloaded["took"])) < 0.2, (live, reloaded)
    shot(page, "run-research-digest-1366")

    # a made-up id ("sleep2") is shown as what it does
    page.goto(f"{server}/runs/{child.pk}/")
    wait_live(page)
    page.wait_for_selector("#history[data-loaded='1']")
    assert page.locator('#run-graph g.node[data-step="sleep2"] .node-label').text_content() == "sleep 1 s"
    assert "sleep2" not in page.inner_text("main")

    # restart the parent from its nested step: the earlier steps are reused, with their original times
    page.goto(f"{server}/runs/{run.pk}/")
    wait_live(page)
    page.select_option("#restart-step", "publish-digest")
    page.click("button[data-action=restart]")
    page.wait_for_url(lambda url: bool(re.search(r"/runs/\d+/$", url)) and not url.endswith(f"/runs/{run.pk}/"))
    wait_live(page)
    page.wait_for_selector("#history[data-loaded='1']")
    assert page.locator("#steps-table .reused").first.inner_text() == f"reused from #{run.pk}"
    page.wait_for_selector(f"#history-list >> text=restarted from #{run.pk} by erin")
    page.wait_for_selector(f"#history-list >> text=reused from #{run.pk}")
    shot(page, "run-restart-reused")


def test_connection_lost__banner_frozen_duration_disabled_actions__then_back_and_who_canceled(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    start_workers(1, SIMPLE)
    flaky = examples.flaky_payment.start({"order_id": "A-9"}, user=e2e_user)
    page = new_page()
    state = {"allow": True, "sockets": []}

    def route(ws):
        if not state["allow"]:
            ws.close()  # the server is unreachable: every reconnection fails at once
            return
        ws.connect_to_server()
        state["sockets"].append(ws)

    page.route_web_socket(re.compile(r"/ws/"), route)
    login(page, server, e2e_user)
    long = examples.long_task.start({"seconds": 120}, user=e2e_user)
    page.goto(f"{server}/runs/{long.pk}/")
    wait_live(page)
    page.wait_for_selector("#run-page[data-status=running]", timeout=LIVE_TIMEOUT)
    assert page.locator("#connection-banner").is_hidden()

    state["allow"] = False
    for ws in state["sockets"]:
        ws.close()
    page.wait_for_selector("#connection-banner", state="visible")
    assert "Connection lost" in page.inner_text("#connection-banner")
    assert page.locator("button[data-action=cancel]").is_disabled()
    frozen = page.inner_text("#run-duration")
    page.wait_for_timeout(2500)  # (asserting a state that must hold, not waiting for one)
    assert page.inner_text("#run-duration") == frozen
    shot(page, "run-connection-lost")

    state["allow"] = True  # the client's backoff reconnects on its own
    page.wait_for_selector("#connection-banner", state="hidden", timeout=LIVE_TIMEOUT)
    page.wait_for_selector("button[data-action=cancel]:not([disabled])")
    wait_for(lambda: page.inner_text("#run-duration") != frozen, 10, what="the duration to tick again")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[data-action=cancel]")
    page.wait_for_selector("#run-page[data-status=canceled]", timeout=LIVE_TIMEOUT)
    page.wait_for_selector("#history-list >> text=run canceled by erin")  # live, from the websocket

    # a retry's backoff is a wait for the retry, not for a worker
    wait_for(lambda: Run.objects.get(pk=flaky.pk).status == RunStatus.SUCCEEDED, 60, what="the flaky payment")
    page.goto(f"{server}/runs/{flaky.pk}/")
    wait_live(page)
    page.wait_for_selector("#history-list >> text=waiting for retry until")
    assert page.locator("#gantt .gantt-backoff").count() == 2  # attempts 2 and 3
    assert page.locator("#gantt .gantt-backoff").first.get_attribute("title").startswith("waiting for retry until")
    shot(page, "run-retry-backoff")


def test_launch__a_used_key_is_linked_and_a_workflow_without_input_has_its_first_steps_form(
    new_page, server, e2e_user, shot
):
    page = new_page()
    login(page, server, e2e_user)
    page.goto(f"{server}/workflows/publish-digest/")  # no input=: the form of format_email's Draft
    page.fill("#f-input-text", "Lima news")
    page.fill("#f-input-score", "0.9")
    page.fill("#f-idempotency_key", "digest-1")
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    first = Run.objects.get(idempotency_key="digest-1")
    assert first.input == {"text": "Lima news", "score": 0.9}
    page.goto(f"{server}/workflows/publish-digest/")
    page.fill("#f-input-text", "Quito news")
    page.fill("#f-input-score", "0.5")
    page.fill("#f-idempotency_key", "digest-1")
    page.click("button[data-submit]")
    page.wait_for_selector("[data-existing-run] a")
    assert page.url.endswith("/workflows/publish-digest/")  # not silently opened
    message = page.inner_text("[data-field=idempotency_key]")
    assert f"A run with this key exists: #{first.pk}, started with text=Lima news, score=0.9" in message
    assert page.get_attribute("[data-existing-run] a", "href").endswith(f"/runs/{first.pk}/")
    assert Run.objects.filter(workflow__name="publish-digest").count() == 1
    shot(page, "launch-key-exists")
