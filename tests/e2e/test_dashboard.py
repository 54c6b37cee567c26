"""The dashboard in Chromium against a real daphne, real RQ workers, the recovery loop and Redis.

Each test logs in through the login form, acts like a user and waits for what the page shows (never a blind
sleep), and saves screenshots to artifacts/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from workflows.models import Run, RunStatus

from .conftest import PASSWORD, SIMPLE

pytestmark = pytest.mark.e2e

LIVE_TIMEOUT = 30_000  # ms: a run's transitions, through workers and the websocket


def login(page, server: str, user, shot=None) -> None:
    page.goto(f"{server}/runs/")
    assert "/accounts/login/" in page.url, "an anonymous visitor must be sent to the login page"
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    if shot:
        shot(page, "login")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/runs/")


def node(page, step: str):
    return page.locator(f'#run-graph g.node[data-step="{step}"]')


def wait_live(page) -> None:
    """The page's websocket is open and the run page (if any) has subscribed to its run."""
    page.wait_for_selector("body[data-live=open]")
    if page.locator("#run-page").count():
        page.wait_for_selector("#run-page[data-subscribed='1']")


def statuses(page, step: str) -> list[str]:
    return page.evaluate("(step) => window.__statusLog[step] || []", step)


def in_order(seen: list[str], *expected: str) -> bool:
    """``expected`` appears in ``seen`` as a subsequence."""
    it = iter(seen)
    return all(any(s == e for s in it) for e in expected)


def test_trip_planner__launched_from_its_form__nodes_turn_running_then_succeeded_live(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    page = new_page()
    login(page, server, e2e_user, shot)
    page.goto(f"{server}/")
    page.wait_for_selector(".wf-card[data-workflow=trip-planner]")
    wait_live(page)
    shot(page, "home", full_page=False)

    page.click(".wf-card[data-workflow=trip-planner] >> text=Launch")
    page.wait_for_url(re.compile(r"/workflows/trip-planner/"))
    assert page.locator('#f-input-budget option[value="luxury"]').count() == 1  # an enum is a select
    assert page.input_value("#f-input-days") == "3"  # defaults are filled in
    assert "Where to go" in page.inner_text("[data-field='input.city']")  # descriptions are help text
    shot(page, "workflow-trip-planner")

    page.fill("#f-input-city", "Lisbon")
    page.select_option("#f-input-budget", "luxury")
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    wait_live(page)
    page.evaluate("window.__sameDocument = true")

    # no worker runs yet: the first step waits for one, the others have not started
    assert node(page, "locate").get_attribute("data-status") in ("pending", "queued")
    assert node(page, "weather").get_attribute("data-status") == ""
    shot(page, "run-trip-planner-pending")

    start_workers(2, SIMPLE)
    page.wait_for_selector("#run-page[data-status=succeeded]", timeout=LIVE_TIMEOUT)
    for step in ("locate", "weather", "activities", "luxury_hotel", "assemble"):
        page.wait_for_selector(f'#run-graph g.node[data-step="{step}"][data-status="succeeded"]')
    page.wait_for_selector('#run-graph g.node[data-step="budget_hostel"][data-status="skipped"]')
    page.wait_for_selector("#run-summary >> text=Grand Palace Hotel")  # the output, from a refreshed fragment
    page.wait_for_selector("#run-actions .run-actions[data-run-status=succeeded]")

    assert page.evaluate("window.__sameDocument") is True, "the page must not reload"
    assert in_order(statuses(page, "locate"), "running", "succeeded"), statuses(page, "locate")
    assert statuses(page, "locate")[0] in ("pending", "queued")
    for step in ("weather", "activities"):  # one of them may take locate's pool slot at once: never pending
        assert in_order(statuses(page, step), "", "running", "succeeded"), statuses(page, step)
        assert statuses(page, step)[1] in ("pending", "queued", "running"), statuses(page, step)
    assert page.locator("#gantt .gantt-row").count() >= 5  # one timeline row per attempt
    shot(page, "run-trip-planner-succeeded")

    node(page, "weather").click()
    page.wait_for_selector("#step-panel .panel-head >> text=weather")
    assert "sunny" in page.inner_text("#step-panel")
    shot(page, "run-step-panel")

    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED and run.created_by == e2e_user
    assert run.input == {"city": "Lisbon", "days": 3, "budget": "luxury"}
    assert not page.errors, page.errors


def test_launch__invalid_input_shows_its_errors_inline_and_creates_no_run(new_page, server, e2e_user, shot):
    page = new_page()
    login(page, server, e2e_user)
    page.goto(f"{server}/workflows/trip-planner/")
    wait_live(page)
    page.evaluate("window.__sameDocument = true")
    page.fill("#f-input-days", "0")
    page.click("button[data-submit]")

    days_error = page.locator("#f-input-days-error")
    days_error.wait_for(state="visible")
    assert "greater than or equal to 1" in days_error.inner_text()  # pydantic's message, as the API gives it
    assert "Field required" in page.inner_text("#f-input-city-error")
    assert page.get_attribute("#f-input-days", "aria-invalid") == "true"
    assert page.evaluate("window.__sameDocument") is True and page.url.endswith("/workflows/trip-planner/")
    shot(page, "launch-invalid", full_page=False)
    assert Run.objects.count() == 0

    page.fill("#f-input-days", "2")  # fixing the input clears the errors on the next submit
    page.fill("#f-input-city", "Kyoto")
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    assert Run.objects.get().input["city"] == "Kyoto"


def test_suspended_run__resumed_from_the_form_generated_from_its_resume_schema(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    start_workers(1, SIMPLE)
    page = new_page()
    login(page, server, e2e_user)
    page.goto(f"{server}/workflows/expense-approval/")
    page.fill("#f-input-employee", "Ann")
    page.fill("#f-input-amount", "1250")
    page.select_option("#f-input-category", "equipment")
    page.click("[data-field='input.receipts'] >> text=+ Add item")  # a list field: items added in the page
    page.locator("[data-field='input.receipts'] input[type=text]").first.fill("R-17")
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    wait_live(page)

    page.wait_for_selector("#run-page[data-status=suspended]", timeout=LIVE_TIMEOUT)
    form = page.locator("form[data-form=resume]")
    form.wait_for(state="visible")  # appears live, from the refreshed actions fragment
    assert "Approve 1250.00 € of equipment for Ann?" in page.inner_text("#run-actions")
    assert node(page, "manager_approval").get_attribute("data-status") == "suspended"
    shot(page, "run-expense-approval-suspended")

    assert form.locator("input[type=checkbox]").count() == 0  # a yes/no decision: two buttons, no unticked box
    form.get_by_label("Comment").fill("Fine, thanks.")
    form.locator("button[data-choice=true]").click()  # ✓ Approve

    page.wait_for_selector("#run-page[data-status=succeeded]", timeout=LIVE_TIMEOUT)
    page.wait_for_selector('#run-graph g.node[data-step="settle"][data-status="succeeded"]')
    page.wait_for_selector("#run-actions .run-actions[data-run-status=succeeded]")  # the refreshed fragment
    page.wait_for_selector("#run-summary >> text=Fine, thanks.")  # the output
    assert page.locator("form[data-form=resume]").count() == 0
    assert page.locator("button[data-action=cancel]").count() == 0
    shot(page, "run-expense-approval-succeeded")

    run = Run.objects.get(pk=run_id)
    assert run.input["receipts"] == ["R-17"]
    assert run.output == {"paid": 1250.0, "employee": "Ann", "note": "Fine, thanks."}
    assert run.step("manager_approval").resume_data == {"approved": True, "comment": "Fine, thanks."}
    assert run.events.filter(kind="step_resumed").get().data["by"] == e2e_user.username  # who approved


def test_cancel__a_long_run_from_its_page_stops_its_running_step(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    start_workers(1, SIMPLE)
    page = new_page()
    login(page, server, e2e_user)
    page.goto(f"{server}/workflows/long-task/")
    page.fill("#f-input-seconds", "120")
    page.click("button[data-submit]")
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    wait_live(page)
    page.wait_for_selector('#run-graph g.node[data-step="crunch"][data-status="running"]', timeout=LIVE_TIMEOUT)
    shot(page, "run-long-task-running")

    page.once("dialog", lambda dialog: dialog.accept())  # "Cancel run #…? Its running steps are interrupted."
    page.click("button[data-action=cancel]")

    page.wait_for_selector("#run-page[data-status=canceled]", timeout=LIVE_TIMEOUT)
    page.wait_for_selector('#run-graph g.node[data-step="crunch"][data-status="canceled"]', timeout=LIVE_TIMEOUT)
    page.wait_for_selector("button[data-action=retry]")  # the actions follow the new status
    assert page.locator("button[data-action=cancel]").count() == 0
    shot(page, "run-long-task-canceled")
    run = Run.objects.get(pk=run_id)
    assert run.status == RunStatus.CANCELED
    assert run.step("crunch").status == "canceled"


def test_runs_page_admin_and_phone_layout(new_page, server, e2e_admin, start_workers, recovery_loop, shot):
    from examples import flows as examples

    start_workers(2, SIMPLE)  # the long run holds one of them
    runs = [
        examples.flaky_payment.start({"order_id": f"A-{i}"}, user=e2e_admin, idempotency_key=f"order-{i}")
        for i in range(3)
    ]
    long_run = examples.long_task.start({"seconds": 300}, user=e2e_admin)
    page = new_page()
    login(page, server, e2e_admin)
    wait_live(page)
    page.wait_for_selector(f"tr[data-run='{runs[0].pk}'][data-status=succeeded]", timeout=LIVE_TIMEOUT)
    shot(page, "runs")

    page.fill("#filter-q", "order-1")
    page.click(".filters button[type=submit]")
    page.wait_for_selector(f"tr[data-run='{runs[1].pk}']")
    assert page.locator("tbody tr[data-run]").count() == 1
    shot(page, "runs-filtered")

    page.goto(f"{server}/admin/workflows/run/")
    assert page.locator("#result_list >> text=watch live").count() >= 4
    shot(page, "admin-runs")
    page.goto(f"{server}/admin/workflows/run/{long_run.pk}/change/")
    page.wait_for_selector("text=Step runs")
    shot(page, "admin-run")
    page.click("#wf-links >> text=Queues (RQ)")
    page.wait_for_url(re.compile(r"/admin/rq/"))
    shot(page, "admin-queues")

    phone = new_page(viewport=(390, 844), is_mobile=True, has_touch=True)
    login(phone, server, e2e_admin)
    phone.goto(f"{server}/")
    wait_live(phone)
    shot(phone, "phone-home", full_page=False)
    phone.goto(f"{server}/workflows/trip-planner/")
    shot(phone, "phone-workflow")
    phone.goto(f"{server}/runs/{long_run.pk}/")
    wait_live(phone)
    phone.wait_for_selector(  # below 700 px the graph shown is the vertical copy
        '#run-graph-vertical g.node[data-step="crunch"][data-status="running"]', timeout=LIVE_TIMEOUT
    )
    shot(phone, "phone-run")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways on a phone ({width}px wide)"
    long_run.cancel()


def test_large_values__shown_on_demand_in_the_summary_and_the_step_panel(
    new_page, server, e2e_user, start_workers, recovery_loop, shot
):
    from bench.storage import value_of_size
    from tests.testapp import storage_flows as sf

    start_workers(1, SIMPLE)
    value = value_of_size(100_000)  # over INLINE_VALUE_BYTES: the page and the journal carry its size
    run = sf.pass10.start(value, user=e2e_user).wait(60)
    assert run.status == RunStatus.SUCCEEDED
    page = new_page()
    login(page, server, e2e_user)
    page.goto(f"{server}/runs/{run.pk}/")
    wait_live(page)
    assert value["blob"][:40] not in page.content()
    page.click("#input-heading ~ .value-ref button[data-value-url]")
    page.wait_for_selector(f"#input-heading ~ pre.json >> text={value['blob'][:40]}")
    node(page, "pass3").click()
    page.wait_for_selector("#step-panel .panel-head >> text=pass3")
    panel = page.locator("#step-panel")
    assert "100.0 kB" in panel.inner_text()  # its output and input: sizes and "show" buttons
    panel.locator(".value-ref button").first.click()
    page.wait_for_selector(f"#step-panel pre.json >> text={value['blob'][:40]}")
    shot(page, "run-large-value")
