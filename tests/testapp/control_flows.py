"""Workflows exercising loops, foreach, nesting, timers, events, suspend/resume and state."""

import datetime as dt
import time

import redis
from django.conf import settings
from pydantic import BaseModel

from workflows import StepContext, Workflow, step

from .flows import Num, increment


class Approval(BaseModel):
    approved: bool
    by: str


class Counter(BaseModel):
    seen: list[int] = []
    total: int = 0


@step
def add_iteration(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value + 1)


count_while = Workflow("count-while", input=Num).dowhile(add_iteration, lambda c: c.data.value < 5).commit()
count_until = Workflow("count-until", input=Num).dountil(add_iteration, lambda c: c.data.value >= 5).commit()
iteration_seen = Workflow("iteration-seen", input=Num).dowhile(add_iteration, lambda c: c.iteration < 3).commit()
runaway = Workflow("runaway", input=Num).dowhile(add_iteration, lambda c: True, max_iterations=4).commit()


@step(pool="narrow", retries=1, backoff=0.01)
def square_item(ctx: StepContext, n: int) -> int:
    r = redis.Redis.from_url(settings.REDIS_URL)
    running = r.incr("test:foreach:running")
    r.rpush("test:foreach:overlap", running)
    try:
        if n < 0:
            raise ValueError(f"negative item {n}")
        if n == 7 and ctx.attempt == 1:
            raise ConnectionError("flaky item 7")
        time.sleep(0.02)
        return n * n
    finally:
        r.decr("test:foreach:running")


squares = Workflow("squares", input=list[int]).foreach(square_item, concurrency=2).commit()
squares_sum = (
    Workflow("squares-sum", input=list[int])
    .foreach(square_item, concurrency=3)
    .map(lambda c: {"total": sum(c.data)})
    .commit()
)


@step
def to_list(ctx: StepContext, data: Num) -> dict:
    return {"not": "a list"}


foreach_not_list = Workflow("foreach-not-list", input=Num).then(to_list).foreach(square_item).commit()

# nesting: grandchild <- child <- parent, three levels
grandchild = Workflow("grandchild", input=Num, output=Num).then(increment).commit()
child = Workflow("child", input=Num, output=Num).then(increment).then(grandchild).commit()
parent = Workflow("parent", input=Num).then(child).then(increment).commit()
nested_parallel = Workflow("nested-parallel", input=Num).parallel([grandchild, add_iteration]).commit()
nested_foreach = Workflow("nested-foreach", input=list[Num]).foreach(grandchild, concurrency=2).commit()


@step
def explode(ctx: StepContext, data: Num) -> Num:
    raise RuntimeError("child exploded")


failing_child = Workflow("failing-child", input=Num).then(explode).commit()
parent_of_failing = Workflow("parent-of-failing", input=Num).then(failing_child).commit()

# timers
napping = Workflow("napping", input=Num).sleep(0.3).then(increment).commit()
napping_fn = Workflow("napping-fn", input=Num).sleep(lambda c: c.data.value / 10).then(increment).commit()
long_nap = Workflow("long-nap", input=Num).sleep(3600).then(increment).commit()
until_nap = (
    Workflow("until-nap", input=Num)
    .sleep_until(lambda c: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.2))
    .then(increment)
    .commit()
)

# events
approval = (
    Workflow("approval", input=Num)
    .then(increment)
    .wait_for_event("approved", schema=Approval)
    .map(lambda c: {"by": c.data.by, "ok": c.data.approved})
    .commit()
)
approval_timeout = Workflow("approval-timeout", input=Num).wait_for_event("approved", timeout=0.2).commit()


# suspend / resume
class Decision(BaseModel):
    ok: bool


@step(resume=Decision)
def review(ctx: StepContext, data: Num) -> dict:
    if ctx.resume_data is None:
        ctx.suspend({"question": f"approve {data.value}?"}, label="review")
    return {"ok": ctx.resume_data.ok, "asked": ctx.suspend_payload["question"], "attempt": ctx.attempt}


@step(resume=Decision)
def second_review(ctx: StepContext, data: Num) -> dict:
    if ctx.resume_data is None:
        ctx.suspend({"question": "second?"}, label="second")
    return {"ok": ctx.resume_data.ok}


reviewed = Workflow("reviewed", input=Num).then(review).commit()
two_reviews = Workflow("two-reviews", input=Num).parallel([review, second_review]).commit()
child_review = Workflow("child-review", input=Num).then(review).commit()
parent_review = Workflow("parent-review", input=Num).then(increment).then(child_review).commit()


# state
@step
def remember(ctx: StepContext, data: Num) -> Num:
    ctx.set_state(Counter(seen=[*ctx.state.seen, data.value], total=ctx.state.total + data.value))
    return Num(value=data.value + 1)


@step
def report_state(ctx: StepContext, data: Num) -> dict:
    return {"seen": ctx.state.seen, "total": ctx.state.total}


state_child = Workflow("state-child", input=Num, state=Counter).then(report_state).commit()
stateful = (
    Workflow("stateful", input=Num, state=Counter)
    .then(remember)
    .then(remember)
    .parallel([report_state, state_child])
    .commit()
)


# restart / retry
@step
def fragile(ctx: StepContext, data: Num) -> Num:
    if redis.Redis.from_url(settings.REDIS_URL).get("test:fragile:broken"):
        raise RuntimeError("still broken")
    return Num(value=data.value * 100)


@step
def counted(ctx: StepContext, data: Num) -> Num:
    redis.Redis.from_url(settings.REDIS_URL).incr("test:counted")
    return Num(value=data.value + 1)


restartable = Workflow("restartable", input=Num).then(counted).then(increment).then(fragile).commit()
