"""``async def`` steps in real worker processes: both worker classes run them; cancel stops the coroutine."""

from __future__ import annotations

import pytest

from tests.testapp import async_flows as af
from workflows.models import RunStatus, StepStatus

from .conftest import FORKING, SIMPLE, wait_for
from .test_workers import finished, step_in

pytestmark = pytest.mark.integration
BOTH_CLASSES = pytest.mark.parametrize("worker_class", [FORKING, SIMPLE], ids=["forking", "simple"])


@BOTH_CLASSES
def test_async_step__runs_and_is_canceled_in_a_worker_process(start_workers, worker_class, redis_conn):
    start_workers(1, worker_class)
    assert finished(af.async_chain.start({"value": 3}), timeout=30).output == [n * n for n in range(8)]

    run = af.async_long.start({"value": 60})
    wait_for(lambda: redis_conn.llen("test:async:started"), timeout=30, what="the coroutine to start")
    run.cancel()

    sleeper = wait_for(lambda: step_in(run, "async_sleeper", StepStatus.CANCELED), timeout=15, what="canceled")
    assert sleeper.attempt == 1 and sleeper.error is None
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    wait_for(lambda: redis_conn.llen("test:async:finally"), timeout=10, what="the coroutine's finally")
    assert finished(af.async_chain.start({"value": 1}), timeout=30).output == [0, 1, 4, 9]  # the worker is free
