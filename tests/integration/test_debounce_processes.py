"""Debounced starts from several real processes at once, fired by several real recovery loops."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.testapp import flows
from workflows.models import Debounce, Run, RunEvent, RunStatus

from .conftest import FAST, SIMPLE, finished, wait_for
from .test_crash_points import crash_env, crashed

pytestmark = pytest.mark.integration


def test_debounce__six_processes_starting_at_once_make_one_run_with_the_last_input(live):
    starters = [
        live.start("run_workflow", "counter", "--input", json.dumps({"value": i}), "--debounce", "burst", "60",
                   name=f"starter-{i}")
        for i in range(6)
    ]  # fmt: skip
    for proc in starters:
        assert proc.popen.wait(120) == 0, proc.output()
    started = {re.search(r"run (\d+) pending", p.output())[1] for p in starters}

    [run] = Run.objects.filter(workflow__name=flows.counter.name)
    assert started == {str(run.pk)}
    assert Debounce.objects.get(run=run).starts == 6
    starts = RunEvent.objects.filter(run=run, kind__in=("run_created", "run_debounced")).order_by("seq")
    assert sorted(e.data["input"]["value"] for e in starts) == list(range(6))
    last = list(starts)[-1].data["input"]

    loops = [live.recovery(env=FAST) for _ in range(3)]  # three loops, one firing
    live.worker(SIMPLE, env=FAST)
    Debounce.objects.filter(run=run).update(due_at=timezone.now() - timedelta(seconds=1))  # the window passed
    run = finished(run)

    assert run.status == RunStatus.SUCCEEDED and run.input == last and run.output == {"value": last["value"] + 2}
    assert RunEvent.objects.filter(run=run, kind="debounce_fired").count() == 1
    assert Run.objects.filter(workflow__name=flows.counter.name).count() == 1
    assert all(p.popen.poll() is None for p in loops)


def test_debounce__a_recovery_loop_dying_as_it_fires_leaves_the_run_to_another(live, tmp_path):
    run = flows.counter.start({"value": 1}, debounce=("k", 60))
    flows.counter.start({"value": 4}, debounce=("k", 60))
    Debounce.objects.filter(run=run).update(due_at=timezone.now() - timedelta(seconds=1))

    doomed = live.recovery(env=crash_env("debounce_fire_before_commit", tmp_path))
    crashed(doomed, tmp_path)
    assert Run.objects.get(pk=run.pk).status == RunStatus.PENDING and Debounce.objects.filter(run=run).exists()
    live.recovery(env=FAST)
    live.worker(SIMPLE, env=FAST)

    run = finished(run)
    assert run.status == RunStatus.SUCCEEDED and run.output == {"value": 6}
    assert RunEvent.objects.filter(run=run, kind="debounce_fired").count() == 1
    wait_for(lambda: not Debounce.objects.exists(), what="the debounce row gone")
