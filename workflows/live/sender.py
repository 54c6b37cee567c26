"""Publication of committed run events to the channel layer (connected to ``engine.publication`` at start-up).

Each transaction's events become the messages of ``payloads.messages_for``. The database stays the source
of truth: a message that never arrives costs a client a delay (it catches up from the journal by ``seq``),
never an event.

Publication runs after commit in whatever process made the transition (RQ workers are plain sync code), so it
must be cheap and must never raise or hang: each thread that commits keeps a private event loop and channel layer
instance (made anew in a forked RQ work horse) and runs the sends on it itself, waiting at most
``LIVE["PUBLISH_TIMEOUT"]`` seconds. After a failure publication pauses for ``LIVE["PUBLISH_RETRY_AFTER"]``
seconds (dropping, with one warning) instead of making every transition wait for a dead Redis.

Measured (bench/push_latency.py and a worker under load): ``async_to_sync(group_send)`` per call makes a new
event loop and Redis connection each time (25-45 ms held); a long-lived loop in a thread of its own, waited on
(~4 ms) or not, costs 3-4 ms of CPU per transition in thread hand-offs; running the same loop in the committing
thread costs the sends themselves, ~0.8 ms for the three messages of a transition. The groups nobody listens
to are skipped after one synchronous read (``listeners``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

from django.conf import settings

from .. import conf
from ..engine.publication import background
from ..store.models import RunEvent
from . import listeners
from .payloads import messages_for

log = logging.getLogger(__name__)


class _Sender:
    """A private event loop and channel layer instance for one thread; the committing thread runs the sends on
    it itself, so publication costs the sends and no thread hand-off."""

    def __init__(self) -> None:
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import channel_layers

        self.pid = os.getpid()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.loop = asyncio.new_event_loop()
        self.asks = listeners.supported(self.layer)  # which groups have members, before sending to them

    async def _send(self, messages: list[tuple[str, dict[str, Any]]], timeout: float) -> None:
        sends = asyncio.gather(*(self.layer.group_send(group, message) for group, message in messages))
        try:
            await asyncio.wait_for(sends, timeout)
        except TimeoutError:
            raise TimeoutError(f"the channel layer did not answer within {timeout}s") from None

    def send(self, messages: list[tuple[str, dict[str, Any]]], timeout: float) -> None:
        if self.asks:  # the groups nobody listens to cost one read for all, not two round trips each
            found = listeners.listened(self.layer, {group for group, _ in messages}, timeout)
            messages = [(group, message) for group, message in messages if group in found]
        if messages:
            self.loop.run_until_complete(self._send(messages, timeout))

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.layer.flush())
        except Exception:  # noqa: BLE001 - a layer that is gone has nothing to flush
            pass
        listeners.forget(self.layer)
        self.loop.close()


_local = threading.local()
_paused_until = 0.0
dropped = 0  # publications dropped while the channel layer was failing (for tests and diagnostics)


def _get_sender() -> _Sender:
    sender = getattr(_local, "sender", None)
    if sender is None or sender.pid != os.getpid():  # a forked child (an RQ work horse) starts afresh
        sender = _local.sender = _Sender()
    return sender


def _send(messages: list[tuple[str, dict[str, Any]]], timeout: float) -> None:
    """Send on the sender of the thread that runs this."""
    _get_sender().send(messages, timeout)


def send(messages: list[tuple[str, dict[str, Any]]], timeout: float) -> None:
    """Send channel-layer messages now on this thread's sender, waiting at most ``timeout`` (raises on failure)."""
    _send(messages, timeout)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def reset() -> None:
    """Forget this thread's sender (e.g. after the test suite changed CHANNEL_LAYERS); the next publish makes a
    new one."""
    global _paused_until
    old, _local.sender, _paused_until = getattr(_local, "sender", None), None, 0.0
    if old is not None and old.pid == os.getpid():
        old.close()


def publish(events: list[RunEvent]) -> None:
    """The publisher: called after commit with one transaction's events. Never raises; waits a bounded time."""
    global _paused_until, dropped
    if not events:
        return
    if time.monotonic() < _paused_until:
        dropped += 1
        return
    if not getattr(settings, "CHANNEL_LAYERS", None):
        return
    try:
        messages, timeout = messages_for(events), conf.live("PUBLISH_TIMEOUT")
        if _loop_running():  # e.g. under Playwright's sync API: this thread cannot run a loop of its own
            background().submit(_send, messages, timeout).result(timeout + 1)
        else:
            _send(messages, timeout)
    except Exception as exc:
        dropped += 1
        retry_after = conf.live("PUBLISH_RETRY_AFTER")
        _paused_until = time.monotonic() + retry_after
        log.warning(
            "live updates: publishing to the channel layer failed (%s: %s); pausing publication for %ss "
            "(clients catch up from the journal)",
            type(exc).__name__,
            exc,
            retry_after,
        )
