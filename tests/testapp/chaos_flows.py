"""Workflows of the crash-point, outage and chaos tests (imported by ``flows.py``).

Every step records each execution of its body in ``StepExecution`` (a transaction of its own, so the record
survives its process dying right after), then passes the ``mid_step`` crash point, then lingers ``pause``
seconds. Outputs are deterministic functions of the input, so a test can check them with ``expected_*``.
"""

import os
import time

from pydantic import BaseModel

from workflows import Backoff, StepContext, Workflow, faults, step

from .models import StepExecution

RETRIES = 6  # room for a planned failure and several lost workers


class Pace(BaseModel):
    value: int
    pause: float = 0.0


def record(ctx: StepContext, data: Pace, planned_failure: bool = False) -> None:
    StepExecution.objects.create(
        run_id=ctx.run_id,
        path=ctx.path,
        attempt=ctx.attempt,
        key=ctx.idempotency_key,
        planned_failure=planned_failure,
        pid=os.getpid(),
    )
    faults.point("mid_step")
    if data.pause:
        time.sleep(data.pause)


@step(retries=RETRIES, backoff=0.05)
def rec_add_one(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)
    return Pace(value=data.value + 1, pause=data.pause)


@step(retries=RETRIES, backoff=0.05)
def rec_double(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)
    return Pace(value=data.value * 2, pause=data.pause)


@step(retries=RETRIES, backoff=0.05)
def rec_add_three(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)
    return Pace(value=data.value + 3, pause=data.pause)


@step(retries=RETRIES, backoff=Backoff(initial=1.5, factor=1, max=1.5))
def rec_flaky(ctx: StepContext, data: Pace) -> Pace:
    """Fails its first attempt on purpose; the retry waits 0.75-1.5 s (a backoff a test can kill processes in)."""
    record(ctx, data, planned_failure=ctx.attempt == 1)
    if ctx.attempt == 1:
        raise ConnectionError("planned failure of attempt 1")
    return Pace(value=data.value + 10, pause=data.pause)


crash_chain = (
    Workflow("crash-chain", input=Pace, output=Pace).then(rec_add_one).then(rec_double).then(rec_add_three).commit()
)
crash_retry = (
    Workflow("crash-retry", input=Pace, output=Pace).then(rec_add_one).then(rec_flaky).then(rec_double).commit()
)
crash_sleep = Workflow("crash-sleep", input=Pace, output=Pace).then(rec_add_one).sleep(0.5).then(rec_double).commit()
crash_nap = Workflow("crash-nap", input=Pace, output=Pace).sleep(1).then(rec_double).commit()


def expected_chain(value: int) -> int:
    return (value + 1) * 2 + 3


def expected_retry(value: int) -> int:
    return (value + 1 + 10) * 2


def expected_sleep(value: int) -> int:
    return (value + 1) * 2


# chaos: then, parallel, foreach (with planned failures and retries), map, then
@step(retries=RETRIES, backoff=0.2)
def c_start(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)
    return Pace(value=data.value + 1, pause=data.pause)


@step(retries=RETRIES, backoff=0.2)
def c_left(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)
    return Pace(value=data.value * 2, pause=data.pause)


@step(retries=RETRIES, backoff=0.2)
def c_right(ctx: StepContext, data: Pace) -> Pace:
    record(ctx, data)
    return Pace(value=data.value + 100, pause=data.pause)


@step(retries=RETRIES, backoff=0.2)
def c_item(ctx: StepContext, data: Pace) -> int:
    """A foreach item; every item whose value is a multiple of 3 fails its first attempt on purpose."""
    planned = data.value % 3 == 0 and ctx.attempt == 1
    record(ctx, data, planned_failure=planned)
    if planned:
        raise ConnectionError(f"planned failure of item {data.value}")
    return data.value * 3


@step(retries=RETRIES, backoff=0.2)
def c_finish(ctx: StepContext, data: dict) -> dict:
    record(ctx, Pace(value=0, pause=data["pause"]))
    return {"total": data["total"], "right": data["right"]}


ITEMS = 4
chaos = (
    Workflow("chaos", input=Pace, output=dict, description="the chaos test's workflow")
    .then(c_start)
    .parallel([c_left, c_right])
    .map(lambda c: [{"value": c.data["c_left"].value + i, "pause": c.data["c_left"].pause} for i in range(ITEMS)])
    .foreach(c_item, concurrency=2)
    .map(lambda c: {"total": sum(c.data), "right": c.result("c_right")["value"], "pause": c.run_input.pause})
    .then(c_finish)
    .commit()
)
CHAOS_PATHS = ["c_start", "c_left", "c_right", *(f"c_item[{i}]" for i in range(ITEMS)), "c_finish"]


def expected_chaos(value: int) -> dict:
    left = (value + 1) * 2
    return {"total": sum((left + i) * 3 for i in range(ITEMS)), "right": value + 1 + 100}


def planned_failures_chaos(value: int) -> int:
    left = (value + 1) * 2
    return sum((left + i) % 3 == 0 for i in range(ITEMS))
