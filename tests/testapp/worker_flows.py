"""Workflows for the integration tests that run real worker processes (imported by ``flows.py``).

Steps record what they do in Redis, so that a test can see executions happening in other processes.
"""

import os
import signal
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


@step(retries=0)
def slow(ctx: StepContext, data: Num) -> Num:
    """Sleeps ``value`` seconds; records each attempt's start in Redis (``test:slow``) as ``attempt:pid``. Its own
    errors are not retried: only infrastructure's are."""
    _redis().rpush("test:slow", f"{ctx.attempt}:{os.getpid()}")
    time.sleep(data.value)
    return Num(value=data.value + 1)


slow_flow = Workflow("slow", input=Num, output=Num).then(slow).then(add_ten).commit()


@step(retries=0)
def poison_pill(ctx: StepContext, data: Num) -> Num:
    """SIGKILLs the process it runs in, at every attempt (recorded in ``test:poison`` as ``attempt:pid`` first)."""
    _redis().rpush("test:poison", f"{ctx.attempt}:{os.getpid()}")
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # never reached
    return data


poison_flow = Workflow("poison", input=Num, output=Num).then(poison_pill).commit()


@step(retries=0)
def dies_once(ctx: StepContext, data: Num) -> Num:
    """Its first attempt ends its process at once with ``os._exit(3)``; later attempts succeed."""
    _redis().rpush("test:dies_once", f"{ctx.attempt}:{os.getpid()}")
    if ctx.attempt == 1:
        os._exit(3)
    return Num(value=data.value + 1)


dies_once_flow = Workflow("dies-once", input=Num, output=Num).then(dies_once).commit()
