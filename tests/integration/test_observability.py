"""Metrics and log lines from real worker processes: the counters add up across processes (prometheus_client's
multiprocess mode), and a worker's lines from inside a step say which run, step and attempt they belong to."""

from __future__ import annotations

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from tests.testapp import observe_flows

from .conftest import FORKING, SIMPLE, finished, wait_for

pytestmark = pytest.mark.integration
TOKEN = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get(reverse("workflows:metrics"), **TOKEN)
    assert response.status_code == 200, response.content
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def all_counted(after, before) -> bool:
    key = ("workflows_runs_finished_total", (("status", "failed"), ("workflow", "observed-failing")))
    runs = ("workflows_runs_finished_total", (("status", "succeeded"), ("workflow", "observed-many")))
    return after.get(key, 0) - before.get(key, 0) >= 1 and after.get(runs, 0) - before.get(runs, 0) >= 3


@pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])
def test_metrics__count_every_worker_process_s_steps(start_workers, client, worker_class):
    workers = start_workers(3, worker_class)
    before = scrape(client)

    runs = [finished(observe_flows.observed_many.start({"value": 4})) for _ in range(3)]
    failed = finished(observe_flows.observed_failing.start({"value": 1}))

    assert [r.status for r in runs] == ["succeeded"] * 3 and failed.status == "failed"
    # a worker counts a transition just after its commit: the last run's end may be a moment behind its status
    after = wait_for(lambda: (s := scrape(client)) and all_counted(s, before) and s, 30, what="the last counts")

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("workflows_runs_started_total", workflow="observed-many") == 3
    assert delta("workflows_runs_finished_total", workflow="observed-many", status="succeeded") == 3
    assert delta("workflows_runs_finished_total", workflow="observed-failing", status="failed") == 1
    assert delta("workflows_step_attempts_total", workflow="observed-many", outcome="succeeded") == 15
    assert delta("workflows_step_attempts_total", workflow="observed-failing", outcome="failed") == 1
    # measured in the workers only: this process runs no step
    items = {"workflow": "observed-many", "pool": "narrow", "outcome": "succeeded"}
    assert delta("workflows_step_duration_seconds_count", **items) == 12
    lists = {"workflow": "observed-many", "pool": "default", "outcome": "succeeded"}
    assert delta("workflows_step_duration_seconds_count", **lists) == 3
    assert delta("workflows_step_queue_wait_seconds_count", workflow="observed-many", pool="narrow") >= 1
    assert after[("workflows_pool_limit", (("pool", "narrow"),))] == 3

    # the workers' own log lines from inside the steps name their run, step and attempt
    output = "".join(w.output() for w in workers)
    for run in runs:
        for i in range(4):
            where = f"[run {run.pk} step observed_work[{i}] attempt 1]"
            assert f"WARNING tests.observe {where} user line for {i}" in output
            assert f"INFO workflows.step {where} ctx line" in output
