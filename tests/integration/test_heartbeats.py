"""Real worker processes and a recovery loop beat (runtime.heartbeats): they appear alive with what they do, a
graceful stop removes a process's beat, and a SIGKILLed one is shown as gone once it misses its beats."""

from __future__ import annotations

import signal

import pytest

from tests.integration.conftest import FORKING, SIMPLE, wait_for
from tests.testapp import worker_flows
from workflows.models import StepRun, StepStatus
from workflows.runtime import heartbeats

pytestmark = pytest.mark.integration
BEAT = {"WORKFLOWS_PROCESS_HEARTBEAT_SECONDS": "0.5"}


def beats(kind: str) -> dict[int, heartbeats.Heartbeat]:
    return {b.pid: b for b in heartbeats.read(kind)}


def test_workers_and_a_recovery_loop_beat_and_disappear_when_killed(live, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "PROCESS_HEARTBEAT_SECONDS": 0.5}  # how readers judge "gone"
    simple, forking = live.worker(SIMPLE, env=BEAT), live.worker(FORKING, env=BEAT)
    loop = live.recovery(env=BEAT)

    def named() -> dict | None:  # the first beat may come before the RQ worker has its name
        w = beats("worker")
        return w if all(p.pid in w and w[p.pid].state["name"] == p.name for p in (simple, forking)) else None

    workers = wait_for(named, 60, what="both workers' beats")
    assert all(workers[p.pid].alive and workers[p.pid].host for p in (simple, forking))
    assert all(workers[p.pid].state["step_run_id"] is None for p in (simple, forking))  # idle
    ticked = wait_for(lambda: (r := beats("recovery").get(loop.pid)) and r.state["last_tick_ago"] is not None and r, 60)
    assert ticked.alive and set(ticked.state["totals"]) >= {"expired", "requeued", "scheduled"}

    # a step being run shows on its worker's beat (the forking worker's parent beats for its work horse)
    run = worker_flows.slow_flow.start({"value": 300})
    step = wait_for(lambda: StepRun.objects.filter(run=run, status=StepStatus.RUNNING).first(), 60, what="running")
    busy = wait_for(
        lambda: [b for b in beats("worker").values() if b.state["step_run_id"] == step.pk], 60, what="busy beat"
    )
    (runner,) = [p for p in (simple, forking) if p.pid == busy[0].pid]

    # a killed worker and a killed loop are gone after a few missed beats; the other worker beats on
    runner.kill()
    loop.kill()
    wait_for(lambda: not beats("worker")[runner.pid].alive, 60, what="worker gone")
    wait_for(lambda: not beats("recovery")[loop.pid].alive, 60, what="loop gone")
    (other,) = [p for p in (simple, forking) if p is not runner]
    assert beats("worker")[other.pid].alive

    # a worker stopped gracefully takes its beat with it
    other.popen.send_signal(signal.SIGTERM)
    other.popen.wait(60)
    wait_for(lambda: other.pid not in beats("worker"), 30, what="clean stop removes the beat")
