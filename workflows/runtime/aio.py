"""Step bodies written as ``async def``: each runs on an event loop of its own in the worker's thread.

The watchdog stops such a body by cancelling its task (from its guard thread, through the loop's thread-safe
wake-up), so an awaiting coroutine stops at its ``await``: an HTTP request, ``asyncio.sleep``, a queue. The
``CancelledError`` becomes ``StepInterrupted`` with the watchdog's reason (timeout or cancel), exactly as a
signal does for a synchronous body. Code that blocks the loop without awaiting stops at its next ``await``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..definition.context import StepContext
from ..definition.step import Step
from ..exceptions import StepInterrupted
from .watchdog import Watchdog


def call_body(step: Step, ctx: StepContext, data: Any, dog: Watchdog) -> Any:
    """Run the step's function, synchronous or not, under its watchdog ``dog``."""
    if not step.is_async:
        return step.fn(ctx, data)
    return run_coroutine(lambda: step.fn(ctx, data), dog)


def run_coroutine(make: Any, dog: Watchdog) -> Any:
    """``asyncio.run`` a coroutine made by ``make()``, stoppable by ``dog``."""

    async def main() -> Any:
        dog.attach(asyncio.get_running_loop(), asyncio.current_task())
        try:
            return await make()
        finally:
            dog.detach()

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if dog.reason:
            raise StepInterrupted(dog.reason) from None
        raise RuntimeError("the step's coroutine was cancelled") from None
