"""``async def`` step bodies: run on an event loop in the worker; timeout and cancel stop an awaiting coroutine."""

import threading
import time

from tests.testapp import async_flows as af
from workflows import step
from workflows.models import StepRun, StepStatus
from workflows.testing import drain

from .test_engine import assert_journal_gapless, finished, statuses


def test_step__an_async_def_body_is_declared_as_async():
    @step
    async def coro(ctx, data: int) -> int:
        return data

    @step
    def plain(ctx, data: int) -> int:
        return data

    assert coro.is_async and not plain.is_async
    assert coro.input.is_any is False and coro.output.validate(3) == 3


def test_async_step__runs_beside_sync_steps(engine_db):
    run = finished(af.async_chain.start({"value": 2}))
    assert run.status == "succeeded", run.error
    assert run.step("async_add").output == {"value": 3}
    assert run.step("sync_double").output == {"value": 6}
    assert run.output == [0, 1, 4, 9, 16, 25]
    assert_journal_gapless(run)


def test_async_step__timeout_cancels_the_awaiting_coroutine(engine_db, redis_conn):
    run = finished(af.async_timeout.start({"value": 1}))
    assert run.status == "failed"
    assert run.error["type"] == "StepTimeout"
    assert statuses(run) == {"async_slow": ["failed", "failed"]}
    # each attempt's coroutine was cancelled at its await: its finally ran, well before the 30 s sleep ended
    assert redis_conn.lrange("test:async:finally", 0, -1) == [b"async_slow:1", b"async_slow:2"]


def test_async_step__cancel_interrupts_the_awaiting_coroutine(engine_db, redis_conn):
    run = af.async_long.start({"value": 60})

    def cancel_once_running():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if redis_conn.llen("test:async:started"):
                run.cancel()
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_once_running)
    canceller.start()
    drain(timeout=60)
    canceller.join()
    run.refresh_from_db()
    assert run.status == "canceled"
    sleeper = StepRun.objects.get(run=run, path="async_sleeper")
    assert sleeper.status == StepStatus.CANCELED and sleeper.error is None  # interrupted, not lost
    assert redis_conn.lrange("test:async:finally", 0, -1) == [b"async_sleeper"]
    assert run.step("sync_double") is None
