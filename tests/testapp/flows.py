"""Workflows the test suite runs, in-process and in real worker processes."""

import time

import redis
from django.conf import settings
from pydantic import BaseModel

from workflows import Backoff, NonRetryableError, StepContext, Workflow, step


class Num(BaseModel):
    value: int


@step
def increment(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value + 1)


@step
def double(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value * 2)


@step
def square(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value**2)


@step
def big(ctx: StepContext, data: Num) -> str:
    return f"big {data.value}"


@step
def small(ctx: StepContext, data: Num) -> str:
    return f"small {data.value}"


counter = (
    Workflow("counter", input=Num, output=Num, description="adds one twice").then(increment).then(increment).commit()
)

fan = (
    Workflow("fan", input=Num)
    .then(increment)
    .parallel([double, square])
    .map(lambda c: Num(value=c.data["double"].value + c.data["square"].value), output=Num)
    .branch([(lambda c: c.data.value > 10, big), (lambda c: c.data.value <= 10, small)])
    .commit()
)


@step(retries=3, backoff=Backoff(initial=0.01, factor=2, max=0.05))
def flaky(ctx: StepContext, data: Num) -> Num:
    if ctx.attempt < 3:
        raise ConnectionError(f"flaky failure on attempt {ctx.attempt}")
    return Num(value=data.value + ctx.attempt)


flaky_flow = Workflow("flaky", input=Num).then(flaky).commit()


@step(retries=5)
def fatal(ctx: StepContext, data: Num) -> Num:
    raise NonRetryableError("bad account number")


fatal_flow = Workflow("fatal", input=Num).then(fatal).then(increment).commit()


@step(retries=1, backoff=0.01)
def always_fails(ctx: StepContext, data: Num) -> Num:
    raise ValueError(f"boom {data.value}")


failing = Workflow("failing", input=Num).then(always_fails).commit()


@step(timeout=0.5, retries=1, backoff=0.01)
def slow(ctx: StepContext, data: Num) -> Num:
    time.sleep(30)
    return data


timeout_flow = Workflow("timeout", input=Num).then(slow).commit()


@step
def early_exit(ctx: StepContext, data: Num) -> Num:
    if data.value > 100:
        ctx.bail({"bailed": data.value})
    return data


bail_flow = Workflow("bail", input=Num).then(early_exit).then(increment).commit()


@step
def chatty(ctx: StepContext, data: Num) -> Num:
    ctx.log("starting", value=data.value)
    ctx.progress(0.5, "half way")
    return Num(value=ctx.result("increment")["value"] * 10)


chatty_flow = Workflow("chatty", input=Num).then(increment).then(chatty).commit()


@step
def wrong_output(ctx: StepContext, data: Num) -> Num:
    return {"value": "not a number"}


wrong_output_flow = Workflow("wrong-output", input=Num).then(wrong_output).commit()


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL)


@step
def sleeper(ctx: StepContext, data: Num) -> Num:
    """Sleeps ``value`` seconds in small steps; records its start in Redis."""
    r = _redis()
    r.rpush("test:started", ctx.path)
    time.sleep(data.value)
    return data


long_flow = Workflow("long", input=Num).then(sleeper).then(increment).commit()


def _tracked(name):
    @step(id=name, pool="narrow")
    def tracked(ctx: StepContext, data: Num) -> Num:
        """Records how many of its kind run at once (in Redis, across worker processes)."""
        r = _redis()
        now = r.incr("test:running")
        r.rpush("test:overlap", now)
        time.sleep(0.15)
        r.decr("test:running")
        return data

    return tracked


wide = Workflow("wide", input=Num).parallel([_tracked(f"t{i}") for i in range(20)]).commit()
# chains whose steps hand their `narrow` slot to the next one: the limit must hold across runs and processes
narrow_chain = (
    Workflow("narrow-chain", input=Num).then(_tracked("n1")).then(_tracked("n2")).then(_tracked("n3")).commit()
)


@step
def noop(ctx: StepContext, data: Num) -> Num:
    return data


chain5 = Workflow("chain5", input=Num).then(noop).then(increment).then(double).then(increment).then(square).commit()


@step(pool="narrow", retries=1, backoff=Backoff(initial=0, jitter=False))
def fails_first_time_at_zero(ctx: StepContext, data: Num) -> Num:
    if data.value == 0 and ctx.attempt == 1:
        raise RuntimeError("the first attempt of value 0 fails")
    return data


@step(id="then_one_more", pool="narrow")
def then_one_more(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value + 1)


admission = Workflow("admission", input=Num).then(fails_first_time_at_zero).then(then_one_more).commit()


# the other test modules' workflows, registered with these by the app's autodiscovery
from . import (  # noqa: E402,F401
    agent_block_flows,
    agent_flows,
    agent_http_flows,
    async_flows,
    chaos_flows,
    control_flows,
    eager_flows,
    flow_control_flows,
    hardening_flows,
    hook_flows,
    observe_flows,
    storage_flows,
    worker_flows,
)
