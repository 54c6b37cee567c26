"""Redis restarted (empty, or from its own persistence) and PostgreSQL connections dropped while runs are in
flight: workers and the recovery loop reconnect, no run is lost, no step runs twice, no transition is doubled.

Redis here is a server of the test's own (``workflows.redis_server``), not the suite's: the worker and recovery
processes get its REDIS_URL, and this process enqueues into it through ``dispatch``'s queue cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.db import connection
from rq import Queue

from tests import invariants
from tests.testapp import chaos_flows
from tests.testapp.models import StepExecution
from workflows import conf
from workflows.devserver import redis_server
from workflows.models import Run, RunStatus
from workflows.runtime import dispatch

from .conftest import FORKING, SIMPLE, finished, wait_for

pytestmark = pytest.mark.integration
FAST = {"WORKFLOWS_LEASE_SECONDS": "3", "WORKFLOWS_REQUEUE_AFTER_SECONDS": "1"}


@dataclass
class OwnRedis:
    directory: Path
    proc: subprocess.Popen
    url: str

    def restart(self, *, empty: bool, down_for: float = 1.0) -> None:
        """Stop Redis (SIGKILL and wipe its data, or SIGTERM: it writes its append-only file), then start it."""
        if empty:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            for path in self.directory.iterdir():
                if path.name != "redis.sock":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        else:
            redis_server.stop(self.proc)
        time.sleep(down_for)
        self.proc, url = redis_server.start(self.directory, appendonly=True)
        assert url == self.url


@pytest.fixture
def own_redis(live, tmp_path, monkeypatch):
    directory = tmp_path / "redis"
    proc, url = redis_server.start(directory, appendonly=True)
    server = OwnRedis(directory, proc, url)
    conn = redis.Redis.from_url(url)
    queues = {name: Queue(name, connection=conn, serializer=dispatch.JSONSerializer) for name in conf.queue_names()}
    monkeypatch.setattr(dispatch, "_queues", queues)
    monkeypatch.setattr(live, "redis", conn)
    monkeypatch.setitem(live.env, "REDIS_URL", url)
    try:
        yield server
    finally:
        live.stop_all()  # before their Redis goes
        live.started.clear()
        redis_server.stop(server.proc)


def assert_all_right(runs: list[Run]) -> None:
    runs = [finished(r) for r in runs]
    assert [r.status for r in runs] == [RunStatus.SUCCEEDED] * len(runs), [r.error for r in runs]
    for run in runs:
        assert run.output["value"] == chaos_flows.expected_chain(run.input["value"])
    report = invariants.check(r.pk for r in runs)
    assert report.problems() == []
    assert report.extra_executions == 0  # no process died: every step body ran exactly once
    assert report.paths == 3 * len(runs)


@pytest.mark.parametrize("empty", [True, False], ids=["empty", "persisted"])
def test_redis_restart__runs_in_flight_all_finish(live, own_redis, empty):
    live.workers(2, FORKING, env=FAST)
    live.worker(SIMPLE, env=FAST)
    live.recovery(env=FAST)
    runs = [chaos_flows.crash_chain.start({"value": i, "pause": 0.2}) for i in range(8)]
    wait_for(lambda: StepExecution.objects.count() >= 4, what="some steps to run")

    own_redis.restart(empty=empty)

    assert_all_right(runs)
    assert StepExecution.objects.count() == 3 * len(runs)


def test_postgresql_connections_dropped__workers_and_recovery_reconnect(live):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    live.workers(2, FORKING, env=FAST)
    live.worker(SIMPLE, env=FAST)
    live.recovery(env=FAST)
    runs = [chaos_flows.crash_chain.start({"value": i, "pause": 0.2}) for i in range(8)]
    wait_for(lambda: StepExecution.objects.count() >= 2, what="some steps to run")

    dropped = 0
    for _ in range(4):  # what every process sees when PostgreSQL restarts: its connection is gone
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            dropped += cursor.fetchone()[0]
        time.sleep(0.4)

    assert dropped >= 4
    assert_all_right(runs)
