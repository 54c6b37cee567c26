"""Workflows for the integration tests that run real worker processes (imported by ``flows.py``).

Steps record what they do in Redis, so that a test can see executions happening in other processes.
"""

import time

import redis
from django.conf import settings
from pydantic import BaseModel

from workflows import StepContext, Workflow, step


class Num(BaseModel):
    value: int


def _redis():
    return redis.Redis.from_url(settings.REDIS_URL)


@step(retries=1, backoff=0.01)
def resilient_sleeper(ctx: StepContext, data: Num) -> Num:
    """Sleeps ``value`` seconds; records each attempt's start in Redis as ``path:attempt``; retried once."""
    _redis().rpush("test:started", f"{ctx.path}:{ctx.attempt}")
    time.sleep(data.value)
    return Num(value=data.value + 1)


@step
def add_ten(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value + 10)


long_retry = Workflow("long-retry", input=Num, output=Num).then(resilient_sleeper).then(add_ten).commit()


@step
def counted(ctx: StepContext, data: Num) -> Num:
    """Records each execution of its body in Redis (``test:executions``), then lingers a little."""
    _redis().rpush("test:executions", f"{ctx.run_id}:{ctx.path}:{ctx.attempt}")
    time.sleep(0.3)
    return Num(value=data.value * 3)


counted_flow = Workflow("counted", input=Num, output=Num).then(counted).commit()
