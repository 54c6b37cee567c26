"""Tokens per run in the runs lists (the page and the JSON API), counted with one query for the whole page."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import agent_flows as af
from tests.testapp import flows

from .test_engine import finished


def agent_runs(user, n: int) -> list:
    return [finished(af.classify_flow.start({"question": f"q{i}", "customer": f"c{i}"}, user=user)) for i in range(n)]


def test_runs_api__each_run_has_its_tokens(engine_db, client, user):
    runs = agent_runs(user, 2)
    plain = finished(flows.counter.start({"value": 1}, user=user))
    client.force_login(user)
    listed = {r["id"]: r for r in client.get("/api/runs/").json()["runs"]}
    for run in runs:
        usage = run.usage
        assert usage["total_tokens"] > 0
        assert listed[run.pk]["tokens"] == {k: usage[k] for k in ("input_tokens", "output_tokens", "total_tokens")}
    assert listed[plain.pk]["tokens"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    detail = client.get(f"/api/workflows/{af.classify_flow.name}/runs/").json()["runs"]
    assert {r["id"]: r["tokens"]["total_tokens"] for r in detail} == {r.pk: r.usage["total_tokens"] for r in runs}


def test_runs_page__shows_input_and_output_tokens_per_run(engine_db, client, user):
    (run,) = agent_runs(user, 1)
    client.force_login(user)
    page = client.get("/runs/").content.decode()
    usage = run.usage
    assert "Tokens</th>" in page
    row = page.split(f'data-run="{run.pk}"', 1)[1].split("</tr>", 1)[0]
    assert f"{usage['input_tokens']} / {usage['output_tokens']}" in row


def test_runs_lists__tokens_cost_one_query_whatever_the_number_of_runs(engine_db, client, user):
    client.force_login(user)

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    agent_runs(user, 1)
    few = {url: queries(url) for url in ("/runs/", "/api/runs/", "/")}
    agent_runs(user, 4)
    assert {url: queries(url) for url in few} == few
    with CaptureQueriesContext(connection) as captured:
        client.get("/api/runs/")
    assert sum("agentmessage" in q["sql"].lower() for q in captured) == 1
