"""The runs list (issue 19, point 3): several statuses at once, search over inputs, the error column, the live
total, bulk cancel / retry, and "launch again with this input". Real database, runs through ``drain()``."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.testapp import flows
from workflows.models import Run, RunStatus
from workflows.store.workflow_rows import row_for
from workflows.testing import drain
from workflows.web import bulk, drawing, queries

pytestmark = pytest.mark.usefixtures("engine_db")
JSON = {"HTTP_ACCEPT": "application/json"}


def _runs(user, inputs: list, status: str = RunStatus.SUCCEEDED) -> list[Run]:
    workflow_id = row_for(flows.counter)
    rows = [
        Run(workflow_id=workflow_id, version=flows.counter.version, status=status, created_by=user, input=value)
        for value in inputs
    ]
    return Run.objects.bulk_create(rows)


def _ids(response) -> set[int]:
    return {r.pk for r in response.context["page"].runs}


def test_search__finds_input_values_case_insensitively_with_quotes_and_non_ascii(alice_client, user, bob):
    lima, zurich, quoted, other = _runs(
        user, [{"city": "Lima"}, {"city": "Zürich", "n": 3}, {"note": 'say "hi" \\ bye'}, {"city": "Oslo"}]
    )
    (bobs,) = _runs(bob, [{"city": "Lima"}])
    assert _ids(alice_client.get("/runs/?q=LIMA")) == {lima.pk}  # bob's run is not alice's to see
    assert _ids(alice_client.get("/runs/?q=zürich")) == {zurich.pk}  # stored as \u00fc on SQLite
    assert _ids(alice_client.get("/runs/", {"q": 'say "hi" \\'})) == {quoted.pk}
    assert _ids(alice_client.get("/runs/?q=%23" + str(other.pk))) == {other.pk}  # a run id still works
    assert _ids(alice_client.get("/runs/?q=%F0%9F%90%8D")) == set()  # an emoji nobody typed: nothing, no error
    assert _ids(alice_client.get("/runs/?q=100%25")) == set()  # LIKE wildcards are literal
    assert bobs.pk not in _ids(alice_client.get("/runs/?q=city"))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=" + "x" * 5000, "q"),
        ("q=a%00b", "q"),
        ("q=%ED%A0%80", None),  # an invalid UTF-8 byte sequence: Django decodes it to U+FFFD, a plain search
        ("status=exploded", "status"),
        ("status=failed,%E2%80%AEdeliaf", "status"),  # a right-to-left override in a status
    ],
)
def test_search_and_status__bad_input_is_reported_and_ignored_never_a_500(alice_client, user, query, field):
    _runs(user, [{"city": "Lima"}])
    response = alice_client.get(f"/runs/?{query}")
    assert response.status_code == 200
    assert set(response.context["filter_errors"]) == ({field} if field else set())
    if field:
        assert re.search(r"alert-error", response.content.decode())
    count = alice_client.get(f"/runs/?{query}&fragment=count")
    assert count.status_code == 200 and set(count.json()["errors"]) == ({field} if field else set())


def test_statuses__several_at_once_from_repeated_or_comma_separated_parameters(alice_client, user):
    ok = _runs(user, [{}] * 2)
    failed = _runs(user, [{}] * 3, RunStatus.FAILED)
    canceled = _runs(user, [{}], RunStatus.CANCELED)
    want = {r.pk for r in failed + canceled}
    assert _ids(alice_client.get("/runs/?status=failed&status=canceled")) == want
    assert _ids(alice_client.get("/runs/?status=failed,canceled")) == want
    page = alice_client.get("/runs/?status=failed&status=canceled").content.decode()
    assert re.search(r'value="failed"[^>]*checked', page) and re.search(r'value="canceled"[^>]*checked', page)
    assert not re.search(r'value="succeeded"[^>]*checked', page)
    assert ok[0].pk not in want
    assert alice_client.get("/runs/?status=failed&status=canceled&fragment=count").json() == {
        "count": 4,
        "capped": False,
        "errors": {},
    }


def test_error_column__shows_type_and_message_truncated_with_the_whole_on_hover(alice_client, user):
    run = flows.failing.start({"value": 7}, user=user)
    drain()
    long = Run.objects.create(
        workflow_id=row_for(flows.failing), version=flows.failing.version, status=RunStatus.FAILED,
        created_by=user, error={"type": "KeyError", "message": "k" * 500, "step": "s"},
    )  # fmt: skip
    html = alice_client.get("/runs/").content.decode()
    row = re.search(rf'<tr data-run="{run.pk}".*?</tr>', html, re.S)[0]
    assert "ValueError" in row and "boom 7" in row
    long_row = re.search(rf'<tr data-run="{long.pk}".*?</tr>', html, re.S)[0]
    assert 'title="KeyError: ' + "k" * 299 + "…" in long_row  # on hover: up to the summary's 300 characters
    shown = re.search(r'<span class="mono">KeyError</span> (k+)…</span>', long_row)[1]
    assert len(shown) < 80  # in the cell: cut short


def test_bulk__cancels_and_retries_each_run_through_the_engine_reporting_what_it_could_not(
    alice_client, user, bob, client
):
    pending = flows.counter.start({"value": 1}, user=user)
    done = flows.counter.start({"value": 2}, user=user)
    drain()
    pending2 = flows.counter.start({"value": 3}, user=user)
    bobs = flows.counter.start({"value": 4}, user=bob)
    done.refresh_from_db()
    assert done.status == "succeeded"
    ids = [pending2.pk, done.pk, bobs.pk, 99999999]
    response = alice_client.post("/runs/bulk/", {"action": "cancel", "run": ids}, **JSON)
    body = response.json()
    assert response.status_code == 200 and not body["ok"]
    assert [r["ok"] for r in body["results"]] == [True, False, False, False]
    assert "already succeeded" in body["results"][1]["message"]
    assert "that you may see" in body["results"][2]["message"]
    assert body["message"].startswith("1 run canceled; 3 could not be")
    assert Run.objects.get(pk=pending2.pk).status == "canceled" and Run.objects.get(pk=bobs.pk).status == "pending"

    retried = alice_client.post("/runs/bulk/", {"action": "retry", "run": [pending2.pk, done.pk]}, **JSON).json()
    assert [r["ok"] for r in retried["results"]] == [True, False]
    new = Run.objects.get(pk=retried["results"][0]["new_run"])
    assert new.restarted_from_id == pending2.pk and "only a failed or canceled run" in retried["results"][1]["message"]

    # may see every run (view_all_runs) but change none of bob's
    user.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    refused = alice_client.post("/runs/bulk/", {"action": "cancel", "run": [bobs.pk]}, **JSON).json()
    assert "may see this run but not change it" in refused["results"][0]["message"]

    # without the scripts: back to the list with a message
    plain = alice_client.post("/runs/bulk/", {"action": "cancel", "run": [pending.pk], "next": "/runs/?status=x"})
    assert plain.status_code == 302 and plain["Location"] == "/runs/?status=x"
    evil = alice_client.post("/runs/bulk/", {"action": "cancel", "run": [pending.pk], "next": "https://evil.test/"})
    assert evil["Location"] == "/runs/"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"action": "explode", "run": ["1"]}, "Unknown action"),
        ({"action": "cancel"}, "Select at least one run"),
        ({"action": "cancel", "run": ["1", "abc"]}, "Run ids are numbers"),
        ({"action": "cancel", "run": ["９"]}, "Run ids are numbers"),  # a full-width digit
        ({"action": "cancel", "run": ["9" * 40]}, "Run ids are numbers"),
        ({"action": "retry", "run": [str(i) for i in range(1, 202)]}, "At most 200 runs"),
    ],
)
def test_bulk__a_bad_request_is_400_and_changes_nothing(alice_client, user, data, message):
    run = flows.counter.start({"value": 1}, user=user)
    response = alice_client.post("/runs/bulk/", data, **JSON)
    assert response.status_code == 400 and response.json()["message"].startswith(message)
    assert Run.objects.get(pk=run.pk).status == "pending"


def test_bulk__needs_login_post_and_csrf(client, user):
    run = flows.counter.start({"value": 1}, user=user)
    assert client.post("/runs/bulk/", {"action": "cancel", "run": [run.pk]}).status_code == 302  # to the login
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/runs/bulk/", {"action": "cancel", "run": [run.pk]}).status_code == 403
    assert strict.get("/runs/bulk/").status_code == 405
    assert Run.objects.get(pk=run.pk).status == "pending"


def test_bulk__parse_keeps_order_and_drops_repeats():
    assert bulk.parse("retry", ["3", "#1", " 3 "]) == ("retry", [3, 1])


def test_launch_again__prefills_the_form_with_a_runs_input(alice_client, user, bob):
    run = flows.counter.start({"value": 41}, user=user)
    page = alice_client.get(f"/workflows/counter/?from_run={run.pk}").content.decode()
    assert re.search(r'name="input.value"[^>]*value="41"', page) and f"#{run.pk}" in page
    run_page = alice_client.get(f"/runs/{run.pk}/").content.decode()
    assert f"/workflows/counter/?from_run={run.pk}" in run_page
    bobs = flows.counter.start({"value": 5}, user=bob)
    for bad in (str(bobs.pk), "abc", "9" * 30, str(run.pk) + "%00"):
        response = alice_client.get(f"/workflows/counter/?from_run={bad}")
        assert response.status_code == 200 and 'value="5"' not in response.content.decode()
        assert "is not prefilled" in response.content.decode()
    assert "is not prefilled" in alice_client.get(f"/workflows/failing/?from_run={run.pk}").content.decode()


def test_drawing__vertical_layout_stacks_blocks_top_to_bottom_with_the_same_nodes():
    graph = flows.counter.graph.to_json()
    flat, tall = str(drawing.render(graph)), str(drawing.render(graph, vertical=True))
    size = lambda svg: tuple(int(x) for x in re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).groups())  # noqa: E731
    assert size(flat)[0] > size(flat)[1] and size(tall)[1] > size(tall)[0]
    nodes = lambda svg: re.findall(r'data-step="([^"]+)"', svg)  # noqa: E731
    assert nodes(flat) == nodes(tall) and "graph-vertical" in tall


def test_search__bounded_to_the_newest_runs(user, monkeypatch):
    monkeypatch.setattr(queries.lists, "SEARCH_WINDOW", 3)
    old, *_ = _runs(user, [{"city": "Lima"}] + [{"city": "Oslo"}] * 3)
    filters, errors = queries.RunFilters.parse({"q": "lima"})
    assert not errors and not filters.apply(Run.objects.all()).exists()  # the oldest is past the window
    filters, _ = queries.RunFilters.parse({"q": "oslo"})
    assert filters.apply(Run.objects.all()).count() == 3
