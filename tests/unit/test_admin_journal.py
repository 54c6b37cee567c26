"""The run's admin page with a long journal: the latest few events and a link to the journal's own paginated
list, never an inline of every event; times to the second (and millisecond)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import flows
from workflows.models import Run, RunEvent

pytestmark = pytest.mark.django_db
EVENTS = 1000
MAX_QUERIES = 15  # measured: 8 on SQLite, whatever the journal's length


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345"))
    return client


@pytest.fixture
def long_run(user) -> Run:
    run = flows.counter.start({"value": 1}, user=user)
    first = run.last_seq + 1
    RunEvent.objects.bulk_create(
        RunEvent(run=run, seq=seq, kind="step_log", step="increment", data={"message": f"line {seq}"})
        for seq in range(first, first + EVENTS)
    )
    Run.objects.filter(pk=run.pk).update(last_seq=first + EVENTS - 1)
    run.refresh_from_db()
    return run


def test_run_change_page__a_1000_event_journal_is_linked_not_inlined(staff_client, long_run):
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(f"/admin/workflows/run/{long_run.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    assert len(queries) <= MAX_QUERIES, [q["sql"] for q in queries]
    rows = re.findall(r"<td>step_log</td>", html)
    assert 0 < len(rows) <= 10  # the latest few, not a thousand
    assert f"?run__id__exact={long_run.pk}" in html and f"All {long_run.last_seq} events" in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", html)  # created at, to the millisecond

    journal = staff_client.get(f"/admin/workflows/runevent/?run__id__exact={long_run.pk}")
    listed = journal.content.decode()
    assert journal.status_code == 200
    assert listed.count("step_log") >= 100 and "line 500" not in listed  # one page of 100, data not inlined
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3}", listed)
