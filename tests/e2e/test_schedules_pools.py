"""The schedules on a workflow's page and the Pools page in Chromium (real daphne, workers, the recovery loop):
create a schedule from its form, see its next fire times, pause and resume it; pause a pool, watch a run wait in
it without reloading the page, set its limit, resume it and see the run finish."""

from __future__ import annotations

import re

import pytest

from tests.testapp import control_flows as cf
from workflows.models import Pool, RunStatus
from workflows.store.scheduling import Schedule

from .conftest import SIMPLE
from .test_dashboard import LIVE_TIMEOUT, login

pytestmark = pytest.mark.e2e


def test_schedules__created_from_the_form_listed_with_next_fires_paused_and_resumed(new_page, server, e2e_admin, shot):
    page = new_page()
    login(page, server, e2e_admin)
    page.goto(f"{server}/workflows/counter/")
    page.click("#schedules >> text=New schedule")
    page.wait_for_url(re.compile(r"/workflows/counter/schedules/new/$"))
    page.fill("#id_name", "mornings")
    page.fill("#id_cron", "30 6 * * *")
    page.fill("#id_timezone", "Europe/Lisbon")
    page.fill("#id_input", '{"value": "not a number"}')
    page.click("button[type=submit] >> text=Create schedule")
    page.wait_for_selector(".field.has-error")  # the workflow's input type refuses it: nothing created
    assert not Schedule.objects.filter(name="mornings").exists()
    page.fill("#id_input", '{"value": 4}')
    page.click("button[type=submit] >> text=Create schedule")
    page.wait_for_url(re.compile(r"/workflows/counter/#schedules$"))

    schedule = Schedule.objects.get(name="mornings")
    row = page.locator(f'#schedules tr[data-schedule="{schedule.pk}"]')
    times = row.locator("td:nth-child(2) li")
    assert times.count() == 5 and all(":30" in t for t in times.all_inner_texts())  # next five, in Lisbon time
    assert "30 6 * * * · Europe/Lisbon" in row.inner_text()
    shot(page, "workflow-schedules")

    row.locator("button >> text=Pause").click()
    page.wait_for_selector(f'#schedules tr[data-schedule="{schedule.pk}"] .chip >> text=paused')
    schedule.refresh_from_db()
    assert schedule.paused
    shot(page, "workflow-schedule-paused")
    page.locator(f'#schedules tr[data-schedule="{schedule.pk}"] button >> text=Resume').click()
    page.wait_for_selector(f'#schedules tr[data-schedule="{schedule.pk}"] button >> text=Pause')
    schedule.refresh_from_db()
    assert not schedule.paused and schedule.next_due is not None

    page.click(f'#schedules a >> text="{schedule.name}"')  # its own page: the same controls
    page.wait_for_selector("main h1 >> text=Schedule mornings")
    shot(page, "schedule-page")


def test_pools__pause_shows_a_run_waiting_live_then_limit_and_resume_let_it_finish(
    new_page, server, e2e_admin, start_workers, recovery_loop, shot
):
    page = new_page()
    login(page, server, e2e_admin)
    page.goto(f"{server}/pools/")
    row = page.locator('#pools tr[data-pool="narrow"]')
    row.wait_for()
    assert row.locator('[data-field="limit"]').inner_text() == "3"
    row.locator("button >> text=Pause").click()
    page.wait_for_selector('#pools tr[data-pool="narrow"] [data-field="paused"][data-paused="true"]')
    assert Pool.objects.get(name="narrow").paused

    start_workers(1, SIMPLE)
    run = cf.squares.start([3], user=e2e_admin)  # its one item runs in the paused pool
    page.wait_for_selector(
        '#pools tr[data-pool="narrow"] [data-field="waiting"]:text-is("1")', timeout=LIVE_TIMEOUT
    )  # refreshed in place: no reload
    shot(page, "pools-paused-waiting")

    row.locator('input[name="max_parallel"]').fill("2")
    row.locator("button >> text=Set").click()
    page.wait_for_selector('#pools tr[data-pool="narrow"] [data-field="limit"]:text-is("2")')
    assert Pool.objects.get(name="narrow").limit == 2
    page.locator('#pools tr[data-pool="narrow"] button >> text=Resume').click()
    page.wait_for_selector('#pools tr[data-pool="narrow"] [data-field="paused"][data-paused="false"]')
    assert run.wait(60).status == RunStatus.SUCCEEDED
    page.wait_for_selector('#pools tr[data-pool="narrow"] [data-field="waiting"]:text-is("0")', timeout=LIVE_TIMEOUT)
    shot(page, "pools")
