"""Workflows of the flow-control tests: per-key concurrency, rates, priority, live pool control.

Steps record themselves in Redis (shared by every worker process): ``fc:running:<key>`` counts the steps of a
key running now and ``fc:overlap:<key>`` lists that count as each step started; ``fc:order`` lists the steps in
the order they started.
"""

import time

import redis
from django.conf import settings
from pydantic import BaseModel
from pydantic_ai import Agent, ModelResponse, TextPart
from pydantic_ai.models.function import FunctionModel

from workflows import StepContext, Workflow, step
from workflows.agents import agent_step


class Job(BaseModel):
    tenant: str = ""
    value: int = 0
    seconds: float = 0.0


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL)


def tracked(ctx: StepContext, data: Job, *keys: str) -> Job:
    """Count this step in, for each key, while it sleeps ``data.seconds``; record the order it started in."""
    r = _redis()
    with r.pipeline() as p:  # MULTI: the count and its record are one step for a reader
        for key in keys:
            p.incr(f"fc:running:{key}")
            p.rpush(f"fc:overlap:{key}", 0)
        p.rpush("fc:order", f"{ctx.run_id}:{ctx.path}")
        counts = p.execute()
    with r.pipeline() as p:  # replace the placeholders with the counts just taken
        for i, key in enumerate(keys):
            p.lset(f"fc:overlap:{key}", -1, counts[2 * i])
        p.execute()
    time.sleep(data.seconds)
    with r.pipeline() as p:
        for key in keys:
            p.decr(f"fc:running:{key}")
        p.execute()
    return data


def tenant_of(c) -> str:
    """A pool's concurrency key, named by its dotted path in settings."""
    return c.data.tenant


@step(pool="tenants", concurrency_key=lambda c: c.data.tenant, key_limit=2)
def per_tenant(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, data.tenant, "tenants")


@step(pool="tenants", concurrency_key=lambda c: c.data.tenant, key_limit=2)
def per_tenant_next(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, data.tenant, "tenants")


keyed = Workflow("fc-keyed", input=Job).then(per_tenant).commit()
keyed_chain = Workflow("fc-keyed-chain", input=Job).then(per_tenant).then(per_tenant_next).commit()


@step(pool="pooled_keys")
def pooled(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, f"pooled-{data.tenant}")


pool_keyed = Workflow("fc-pool-keyed", input=Job).then(pooled).commit()


@step(pool="tenants")
def unkeyed(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, data.tenant, "tenants")


workflow_keyed = (
    Workflow("fc-workflow-keyed", input=Job, concurrency_key=lambda c: c.run_input.tenant, key_limit=1)
    .then(unkeyed)
    .commit()
)


@step(pool="rated")
def rated_step(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "rated")


rated = Workflow("fc-rated", input=Job).then(rated_step).commit()


@step(pool="slow_rate")
def slow_rated_step(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "slow_rate")


slow_rated = Workflow("fc-slow-rated", input=Job).then(slow_rated_step).commit()


@step(pool="key_rated", concurrency_key=lambda c: c.data.tenant, key_limit=10)
def key_rated_step(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "key_rated")


key_rated = Workflow("fc-key-rated", input=Job).then(key_rated_step).commit()


@step(pool="single")
def first(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "single")


@step(pool="single")
def second(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "single")


single = Workflow("fc-single", input=Job).then(first).commit()
single_two = Workflow("fc-single-two", input=Job).then(first).then(second).commit()
urgent = Workflow("fc-urgent", input=Job, priority=7).then(first).commit()


@step(pool="narrow")
def n1(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "narrow")


@step(pool="narrow")
def n2(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "narrow")


@step(pool="narrow")
def n3(ctx: StepContext, data: Job) -> Job:
    return tracked(ctx, data, "narrow")


narrow3 = Workflow("fc-narrow3", input=Job).then(n1).then(n2).then(n3).commit()


def _broken_key(c) -> str:
    raise ValueError("no tenant")


@step(pool="tenants", concurrency_key=_broken_key, key_limit=1)
def broken(ctx: StepContext, data: Job) -> Job:
    return data


broken_key = Workflow("fc-broken-key", input=Job).then(broken).commit()


def _answer(messages, info) -> ModelResponse:
    return ModelResponse(parts=[TextPart("done")])  # FunctionModel counts its tokens


budgeted = (
    Workflow("fc-budgeted", input=Job)
    .then(agent_step(Agent(FunctionModel(_answer)), id="answer", prompt=lambda c: f"job {c.data.value}", pool="budget"))
    .commit()
)
