"""Step bodies written as ``async def``: they run on the worker thread's event loop, made once per process and
thread and kept open between steps (not ``asyncio.run``'s loop per call), so that what a step's libraries keep
across calls (an HTTP client's connection pool, such as a model provider's) stays usable by the next step.

The watchdog stops such a body by cancelling its task (from its guard thread, through the loop's thread-safe
wake-up), so an awaiting coroutine stops at its ``await``: an HTTP request, ``asyncio.sleep``, a queue. The
``CancelledError`` becomes ``StepInterrupted`` with the watchdog's reason (timeout or cancel), exactly as a
signal does for a synchronous body. Code that blocks the loop without awaiting stops at its next ``await``.
"""

from __future__ import annotations

import asyncio
import os
import threading
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


_loops: dict[tuple[int, int], asyncio.AbstractEventLoop] = {}


def worker_loop() -> asyncio.AbstractEventLoop:
    """This thread's loop for step bodies (a forked work horse makes its own)."""
    key = (os.getpid(), threading.get_ident())
    loop = _loops.get(key)
    if loop is None or loop.is_closed():
        loop = _loops[key] = asyncio.new_event_loop()
    return loop


def run_coroutine(make: Any, dog: Watchdog) -> Any:
    """Run a coroutine made by ``make()`` to its end on ``worker_loop()``, stoppable by ``dog``."""

    async def main() -> Any:
        dog.attach(asyncio.get_running_loop(), asyncio.current_task())
        try:
            return await make()
        finally:
            dog.detach()

    loop = worker_loop()
    try:
        return loop.run_until_complete(main())
    except asyncio.CancelledError:
        if dog.reason:
            raise StepInterrupted(dog.reason) from None
        raise RuntimeError("the step's coroutine was cancelled") from None
