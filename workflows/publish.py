"""Publication of committed run events to the channel layer (registered with ``events.add_publisher``).

Every transaction's new ``RunEvent``s become, per run, three channel-layer messages: the events themselves to
the run's group, and a compact summary of the run (status, progress, timestamps) to its workflow's group and to
the runs-list group. The database stays the source of truth: a message that never arrives costs a client a
delay (it catches up from the journal by ``seq``), never an event.

Publication runs after commit in whatever process made the transition (RQ workers are plain sync code), so it
must be cheap and must never raise or hang: each thread that commits keeps a private event loop and channel layer
instance (made anew in a forked RQ work horse) and runs the sends on it itself, waiting at most
``LIVE["PUBLISH_TIMEOUT"]`` seconds. After a failure publication pauses for ``LIVE["PUBLISH_RETRY_AFTER"]``
seconds (dropping, with one warning) instead of making every transition wait for a dead Redis.

Measured (bench/push_latency.py and a worker under load): ``async_to_sync(group_send)`` per call makes a new
event loop and Redis connection each time (25-45 ms held); a long-lived loop in a thread of its own, waited on
(~4 ms) or not, costs 3-4 ms of CPU per transition in thread hand-offs; running the same loop in the committing
thread costs the sends themselves, ~0.8 ms for the three messages of a transition.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections import defaultdict
from typing import Any

from django.conf import settings

from . import registry
from .events import background
from .exceptions import UnknownWorkflow
from .models import Run, RunEvent, RunStatus

log = logging.getLogger(__name__)

LIVE_DEFAULTS: dict[str, Any] = {
    "PUBLISH_TIMEOUT": 1.0,  # seconds a transition's process waits for the channel layer, at most
    "HOLD_SECONDS": 0.02,  # a worker's back-to-back transitions are published together within this window
    "PUBLISH_RETRY_AFTER": 5.0,  # after a failure, drop publications for this long before trying again
    "MAX_EVENT_BYTES": 64 * 1024,  # bigger event data is not copied into Redis: clients read it from the DB
    "MAX_SUBSCRIPTIONS": 50,  # per websocket connection
    "BUFFER_FRAMES": 1000,  # data frames queued for one connection before its topics are told to resync
    "WINDOW_BYTES": 1 << 20,  # bytes sent and not yet acknowledged by the client (flow control)
    "SNAPSHOT_RUNS": 50,  # runs in the snapshot that opens a "runs" or "workflow:<name>" subscription
    "REPLAY_BATCH": 200,  # events read from the journal per query when replaying or filling a gap
    "SWEEP_SECONDS": 5.0,  # how often a connection refreshes its groups and checks the DB for missed updates
}

RUNS_GROUP = "workflows.runs"


def live_setting(name: str) -> Any:
    """``settings.WORKFLOWS["LIVE"][name]``, or its default."""
    return getattr(settings, "WORKFLOWS", {}).get("LIVE", {}).get(name, LIVE_DEFAULTS[name])


def run_group(run_id: int) -> str:
    return f"workflows.run.{run_id}"


@functools.lru_cache(maxsize=1024)
def workflow_group(name: str) -> str:
    # group names allow only [a-zA-Z0-9._-] and < 100 characters: hash the name rather than trust it
    return f"workflows.workflow.{hashlib.sha256(name.encode()).hexdigest()[:32]}"


# --- payloads (shared with the consumer, which replays the same shapes from the database) --------------------


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def event_payload(seq: int, kind: str, step: str, data: Any, at) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "step": step, "data": data, "at": _iso(at)}


SUMMARY_FIELDS = (
    "id",
    "workflow__name",
    "status",
    "cursor",
    "last_seq",
    "created_by_id",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
)
_MODEL_FIELDS = {"status", "cursor", "last_seq", "created_by_id", "created_at", "started_at", "finished_at"}


def progress(workflow: str, status: str, cursor: int) -> float | None:
    """Fraction of the workflow's blocks behind the run (1.0 once it succeeded); None for an unknown workflow."""
    if status == RunStatus.SUCCEEDED:
        return 1.0
    try:
        blocks = len(registry.get(workflow).graph.blocks)
    except UnknownWorkflow:
        return None
    return round(min(cursor, blocks) / blocks, 3) if blocks else None


def summary(values: dict[str, Any]) -> dict[str, Any]:
    """The runs-list view of a run, from a ``Run.objects.values(*SUMMARY_FIELDS)`` row."""
    name = values["workflow__name"]
    return {
        "id": values["id"],
        "workflow": name,
        "status": values["status"],
        "seq": values["last_seq"],
        "progress": progress(name, values["status"], values["cursor"]),
        "created_at": _iso(values["created_at"]),
        "started_at": _iso(values["started_at"]),
        "finished_at": _iso(values["finished_at"]),
        "updated_at": _iso(values["updated_at"]),
    }


def _values_of(run: Run) -> dict[str, Any] | None:
    """The summary fields of an in-memory run, or None when some were not loaded (then read the row)."""
    if run.get_deferred_fields() & _MODEL_FIELDS or not Run.workflow.is_cached(run):
        return None
    values = {f: getattr(run, f) for f in _MODEL_FIELDS}
    values.update(id=run.pk, workflow__name=run.workflow.name, updated_at=run.updated_at)
    return values


def messages_for(events: list[RunEvent]) -> list[tuple[str, dict[str, Any]]]:
    """(group, message) pairs for committed events (one transaction's, or several held together): per run, its
    events and its summary."""
    max_bytes = live_setting("MAX_EVENT_BYTES")
    by_run: dict[int, list[RunEvent]] = defaultdict(list)
    for ev in events:
        by_run[ev.run_id].append(ev)
    messages = []
    missing = []
    runs = {}
    for run_id, evs in by_run.items():
        evs.sort(key=lambda e: e.seq)
        payloads = []
        for e in evs:
            payload = event_payload(e.seq, e.kind, e.step, e.data, e.at)
            if len(json.dumps(e.data, separators=(",", ":"), default=str)) > max_bytes:
                payload = {"seq": e.seq, "stub": True}  # the consumer reads this one from the journal
            payloads.append(payload)
        messages.append((run_group(run_id), {"type": "run.events", "run": run_id, "events": payloads}))
        values = _values_of(evs[-1].run)  # the run as its latest transaction left it
        if values is None:
            missing.append(run_id)
        else:
            runs[run_id] = values
    if missing:
        try:
            runs.update((v["id"], v) for v in Run.objects.filter(pk__in=missing).values(*SUMMARY_FIELDS))
        except Exception:  # the events still go out; the runs list catches up at the run's next change
            log.warning("live updates: could not read runs %s for their summaries", missing, exc_info=True)
    for values in runs.values():
        s = summary(values)
        owner = values["created_by_id"]
        messages.append((RUNS_GROUP, {"type": "run.summary", "topic": "runs", "owner": owner, "run": s}))
        messages.append(
            (
                workflow_group(s["workflow"]),
                {"type": "run.summary", "topic": f"workflow:{s['workflow']}", "owner": owner, "run": s},
            )
        )
    return messages


# --- sending ---------------------------------------------------------------------------------------------------


class _Sender:
    """A private event loop and channel layer instance for one thread; the committing thread runs the sends on
    it itself, so publication costs the sends and no thread hand-off."""

    def __init__(self) -> None:
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import channel_layers

        self.pid = os.getpid()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.loop = asyncio.new_event_loop()

    async def _send(self, messages: list[tuple[str, dict[str, Any]]], timeout: float) -> None:
        sends = asyncio.gather(*(self.layer.group_send(group, message) for group, message in messages))
        try:
            await asyncio.wait_for(sends, timeout)
        except TimeoutError:
            raise TimeoutError(f"the channel layer did not answer within {timeout}s") from None

    def send(self, messages: list[tuple[str, dict[str, Any]]], timeout: float) -> None:
        self.loop.run_until_complete(self._send(messages, timeout))

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.layer.flush())
        except Exception:  # noqa: BLE001 - a layer that is gone has nothing to flush
            pass
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
        messages, timeout = messages_for(events), live_setting("PUBLISH_TIMEOUT")
        if _loop_running():  # e.g. under Playwright's sync API: this thread cannot run a loop of its own
            background().submit(_send, messages, timeout).result(timeout + 1)
        else:
            _send(messages, timeout)
    except Exception as exc:
        dropped += 1
        retry_after = live_setting("PUBLISH_RETRY_AFTER")
        _paused_until = time.monotonic() + retry_after
        log.warning(
            "live updates: publishing to the channel layer failed (%s: %s); pausing publication for %ss "
            "(clients catch up from the journal)",
            type(exc).__name__,
            exc,
            retry_after,
        )
