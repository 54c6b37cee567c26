"""``async def`` steps: a chain mixing them with sync steps, a timeout and a cancel that stop an ``await``."""

import asyncio

import redis
from django.conf import settings
from pydantic import BaseModel

from workflows import StepContext, Workflow, step


class Num(BaseModel):
    value: int


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@step
async def async_add(ctx: StepContext, data: Num) -> Num:
    await asyncio.sleep(0.01)
    return Num(value=data.value + 1)


@step
def sync_double(ctx: StepContext, data: Num) -> Num:
    return Num(value=data.value * 2)


@step
async def async_gather(ctx: StepContext, data: Num) -> list[int]:
    async def square(n: int) -> int:
        await asyncio.sleep(0.01)
        return n * n

    return list(await asyncio.gather(*(square(n) for n in range(data.value))))


async_chain = Workflow("async-chain", input=Num).then(async_add).then(sync_double).then(async_gather).commit()


@step(timeout=0.5, retries=1, backoff=0)
async def async_slow(ctx: StepContext, data: Num) -> Num:
    """Awaits far longer than its timeout; records in Redis that its ``finally`` ran (the task was cancelled)."""
    try:
        await asyncio.sleep(30)
    finally:
        _redis().rpush("test:async:finally", f"{ctx.path}:{ctx.attempt}")
    return data


async_timeout = Workflow("async-timeout", input=Num).then(async_slow).commit()


@step
async def async_sleeper(ctx: StepContext, data: Num) -> Num:
    _redis().rpush("test:async:started", ctx.path)
    try:
        await asyncio.sleep(data.value)
    finally:
        _redis().rpush("test:async:finally", ctx.path)
    return data


async_long = Workflow("async-long", input=Num).then(async_sleeper).then(sync_double).commit()
