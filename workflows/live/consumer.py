"""The websocket subscription protocol on ``<dashboard prefix>ws/`` (``workflows.routing``; README: *Live updates*).

One ``LiveConsumer`` per connection. A subscription first reads the journal (events after ``since``), then
streams the live events the publisher sends to the run's channel-layer group; ``seq`` orders them, drops the
duplicates at the replay/live seam and reveals gaps (a lost or oversized message), which are read from the
journal. A periodic sweep re-joins the groups and compares ``Run.last_seq`` with what was sent, so a
publication that never arrived (Redis down, a full channel) delays an update, never loses it.

Flow control: daphne gives an ASGI application no backpressure, so the client acknowledges what it has
received (``{"op": "ack", "n": <frames received>}``). At most ``WINDOW_BYTES`` of data frames are in flight;
the rest waits in a queue of at most ``BUFFER_FRAMES`` frames and ``MAX_BUFFER_BYTES`` bytes; a topic whose next
frame does not fit is dropped from the queue and told ``{"op": "resync", "topic": ..., "since": <last seq sent>}``.
Replays read the journal only as fast as the client takes them, so a long history never overflows the queue. So a
connection holds at most about ``WINDOW_BYTES + MAX_BUFFER_BYTES`` of frames, whatever it subscribes to; one whose
client acknowledges nothing for ``DRAIN_SECONDS`` while frames wait is closed (code 4408), and a user may hold
``MAX_CONNECTIONS_PER_USER`` connections across every daphne process (``quota``; the next is closed with 4429).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .. import conf, metrics
from ..definition import limits
from ..exceptions import InvalidInput
from . import quota, reads, tokens
from .catchup import CatchUp
from .payloads import RUNS_GROUP, run_group, workflow_group
from .protocol import TOPIC_RE, Frame, ProtocolError, Subscription

log = logging.getLogger(__name__)


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), default=str)  # ASCII: len() is the size in bytes


# --- the consumer ----------------------------------------------------------------------------------------------


class LiveConsumer(CatchUp, AsyncJsonWebsocketConsumer):
    """Subscriptions to ``run:<id>``, ``workflow:<name>`` and ``runs`` for one logged-in user."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        secret = reads.bearer_secret(self.scope)
        if secret is not None:  # an API token (scripts, the CLI) stands for its owner, whatever the cookies say
            user = await reads.token_user(secret)
            self.scope["workflows_token"] = secret
        if user is None or not user.is_authenticated:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        self.user = user
        if not await quota.claim(user.pk, self.channel_name):
            limit = conf.live("MAX_CONNECTIONS_PER_USER")
            await self.accept()  # then closed with a code the client can tell apart from a refused login
            await self.send_json({"op": "error", "code": "too_many_connections", "message": f"at most {limit} "
                                  "live connections per user: close another tab or window"})  # fmt: skip
            await self.close(code=quota.TOO_MANY_CONNECTIONS)
            return
        self.counted = True
        self.sees_all = await reads.sees_all(user)
        self.max_subscriptions = conf.live("MAX_SUBSCRIPTIONS")
        self.buffer_frames = conf.live("BUFFER_FRAMES")
        self.buffer_bytes = conf.live("MAX_BUFFER_BYTES")
        self.drain_seconds = conf.live("DRAIN_SECONDS")
        self.window_bytes = conf.live("WINDOW_BYTES")
        self.snapshot_runs = conf.live("SNAPSHOT_RUNS")
        self.replay_batch = conf.live("REPLAY_BATCH")
        self.sweep_seconds = conf.live("SWEEP_SECONDS")
        self.subs: dict[str, Subscription] = {}
        self.queue: deque[Frame] = deque()  # data frames waiting for the window
        self.queued_bytes = 0
        self.frames = 0  # frames written on this connection; the client acknowledges this count
        self.in_flight: deque[tuple[int, int]] = deque()  # (frame number, size) of unacknowledged data frames
        self.in_flight_bytes = 0
        self.acked_at = asyncio.get_running_loop().time()  # the last acknowledgement, or when frames began to wait
        self.wake_sender = asyncio.Event()
        self.wake_replayer = asyncio.Event()
        await self.accept()
        metrics.websocket(opened=True)
        self.tasks = [
            asyncio.create_task(self._guard(self._sender())),
            asyncio.create_task(self._guard(self._replayer())),
            asyncio.create_task(self._guard(self._sweeper())),
        ]

    async def disconnect(self, code: int) -> None:
        counted, self.counted = getattr(self, "counted", False), False
        for task in getattr(self, "tasks", ()):
            task.cancel()
        for sub in list(getattr(self, "subs", {}).values()):
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(sub.group, self.channel_name)
        if counted:
            metrics.websocket(opened=False)
            await quota.release(self.user.pk, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale DB connections before every message (a thread hop each); every database call
        # here goes through database_sync_to_async, which does that itself, so live messages skip it.
        handler = getattr(self, message["type"].replace(".", "_"), None)
        if handler is None or message["type"].startswith("_"):
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _guard(self, coro) -> None:
        """Run a background loop; if it breaks, close the connection (the client reconnects and resubscribes)."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live updates: a connection's background task failed; closing it")
            with contextlib.suppress(Exception):
                await self.close(code=1011)

    # --- frames out --------------------------------------------------------------------------------------------

    async def _write(self, text: str, data: bool) -> None:
        self.frames += 1
        if data:
            if not self.in_flight:
                self.acked_at = asyncio.get_running_loop().time()  # the client's time to drain starts now
            self.in_flight.append((self.frames, len(text)))
            self.in_flight_bytes += len(text)
        await self.send(text_data=text)

    async def _control(self, frame: dict[str, Any]) -> None:
        """Replies, errors and resyncs: written at once, outside the window (the client's own requests)."""
        await self._write(_dumps(frame), data=False)

    async def _error(self, code: str, message: str, **extra: Any) -> None:
        await self._control({"op": "error", "code": code, "message": message, **extra})

    async def _enqueue(self, sub: Subscription, seq: int, frame: dict[str, Any], run_id: int = 0) -> bool:
        """Queue a data frame; on overflow drop the topic's queued frames and tell the client to resync."""
        if sub.stalled:
            return False
        text = _dumps(frame)
        if run_id and run_id in sub.unsent:  # a newer summary of a run whose last one is still queued
            item = sub.unsent[run_id]
            self.queued_bytes += len(text) - len(item.text)
            item.text = text
            return True
        # a frame bigger than the whole buffer still goes alone (else its topic could never move on)
        if len(self.queue) >= self.buffer_frames or (self.queue and self.queued_bytes + len(text) > self.buffer_bytes):
            await self._stall(sub)
            return False
        item = Frame(sub, seq, text, run_id)
        if run_id:
            sub.unsent[run_id] = item
        self.queue.append(item)
        self.queued_bytes += len(text)
        self.wake_sender.set()
        return True

    async def _stall(self, sub: Subscription) -> None:
        sub.stalled = True
        metrics.frames_dropped(1 + sum(item.sub is sub for item in self.queue))  # the one refused and those queued
        self._drop_queued(sub)
        frame: dict[str, Any] = {"op": "resync", "topic": sub.topic}
        if sub.is_run:
            frame["since"] = sub.sent
        log.info("live updates: %s overflowed the buffer of connection %s", sub.topic, self.channel_name)
        await self._control(frame)

    def _drop_queued(self, sub: Subscription) -> None:
        sub.unsent.clear()
        if any(item.sub is sub for item in self.queue):
            self.queue = deque(item for item in self.queue if item.sub is not sub)
            self.queued_bytes = sum(len(item.text) for item in self.queue)

    def _current(self, sub: Subscription) -> bool:
        return self.subs.get(sub.topic) is sub and not sub.stalled

    async def _sender(self) -> None:
        """Write queued data frames while the client's window has room."""
        while True:
            await self.wake_sender.wait()
            self.wake_sender.clear()
            while self.queue and (self.in_flight_bytes < self.window_bytes or not self.in_flight):
                item = self.queue.popleft()
                self.queued_bytes -= len(item.text)
                sub = item.sub
                if item.run_id:
                    sub.unsent.pop(item.run_id, None)
                if not self._current(sub):
                    continue
                await self._write(item.text, data=True)
                if item.seq:
                    sub.sent = max(sub.sent, item.seq)
            self.wake_replayer.set()  # there may be room for more of the journal now

    # --- frames in ---------------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if not hasattr(self, "subs"):
            return  # refused (too many connections) and closing: its frames are not read
        if text_data is None:
            return await self._error("bad_json", "frames must be JSON text, not binary")
        try:  # bounded: a huge or deeply nested frame is an error frame, not a killed connection
            content = limits.loads(
                text_data, "frame", max_depth=conf.get("MAX_JSON_DEPTH"), max_bytes=conf.live("MAX_FRAME_BYTES")
            )
        except InvalidInput as exc:
            return await self._error("bad_json" if exc.errors[0]["type"] == "json_invalid" else "bad_request", str(exc))
        if not isinstance(content, dict):
            return await self._error("bad_request", "a frame must be a JSON object")
        ref, topic = content.get("id"), content.get("topic")
        valid_ref = ref is None or (isinstance(ref, (str, int)) and not isinstance(ref, bool) and len(str(ref)) <= 100)
        extra = {"id": ref} if ref is not None and valid_ref else {}  # errors echo the request's id and topic
        if isinstance(topic, str) and len(topic) <= 120:
            extra["topic"] = topic
        try:
            if not valid_ref:
                raise ProtocolError("bad_request", "id must be a string or an integer of at most 100 characters")
            await self.receive_json(content)
        except ProtocolError as exc:
            await self._error(exc.code, exc.message, **extra)
        except Exception:
            log.exception("live updates: handling %r failed", content.get("op"))
            await self._error("internal", "internal error; try again", **extra)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        op = content.get("op")
        if op == "subscribe":
            await self._subscribe(content)
        elif op == "unsubscribe":
            await self._unsubscribe(content)
        elif op == "ack":
            self._ack(content)
        elif op == "ping":
            await self._control({"op": "pong", **({"id": content["id"]} if "id" in content else {})})
        else:
            raise ProtocolError("unknown_op", f"unknown op {op!r}: use subscribe, unsubscribe, ack or ping")

    def _ack(self, content: dict[str, Any]) -> None:
        n = content.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ProtocolError("bad_request", "ack needs n, the number of frames received")
        if self.in_flight and self.in_flight[0][0] <= n:
            self.acked_at = asyncio.get_running_loop().time()
        while self.in_flight and self.in_flight[0][0] <= n:
            self.in_flight_bytes -= self.in_flight.popleft()[1]
        self.wake_sender.set()

    async def _subscribe(self, content: dict[str, Any]) -> None:
        topic = content.get("topic")
        match = TOPIC_RE.match(topic) if isinstance(topic, str) else None
        if match is None:
            raise ProtocolError("unknown_topic", "topic must be run:<id>, workflow:<name> or runs")
        since = content.get("since", 0)
        if since is None:
            since = 0
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ProtocolError("bad_request", "since must be a non-negative integer (a seq)")
        if topic not in self.subs and len(self.subs) >= self.max_subscriptions:
            raise ProtocolError(
                "too_many_subscriptions", f"at most {self.max_subscriptions} subscriptions per connection"
            )
        reply: dict[str, Any] = {"op": "subscribed", "topic": topic}
        if match["run"]:
            run_id = int(match["run"])
            last_seq = await reads.visible_last_seq(self.user, run_id)
            if last_seq is None:  # missing and forbidden look the same: existence does not leak
                raise ProtocolError("not_found", f"no run {run_id} that you may see")
            if since > last_seq:
                raise ProtocolError("bad_request", f"since {since} is past the run's last seq ({last_seq})")
            sub = Subscription(topic, run_group(run_id), run_id=run_id, last=since, sent=since, want=last_seq)
            reply.update(since=since, last_seq=last_seq)
        elif match["workflow"]:
            name = match["workflow"]
            if not await reads.workflow_exists(name):
                raise ProtocolError("not_found", f"no workflow {name!r}")
            sub = Subscription(topic, workflow_group(name), workflow=name)
        else:
            sub = Subscription(topic, RUNS_GROUP)
        await self.channel_layer.group_add(sub.group, self.channel_name)  # join first, then read the journal
        old = self.subs.pop(topic, None)
        if old is not None:  # subscribing again (a resync) restarts the topic from the new since
            self._drop_queued(old)
        if "id" in content:
            reply["id"] = content["id"]
        await self._control(reply)  # before any of its data: the sub is not visible to the replayer yet
        self.subs[topic] = sub
        self.wake_replayer.set()
        if sub.is_run:  # an agent's response streaming now: its text so far (live.tokens)
            for frame in await tokens.partial_frames(sub.run_id, topic):
                await self._enqueue(sub, 0, frame)

    async def _unsubscribe(self, content: dict[str, Any]) -> None:
        topic = content.get("topic")
        sub = self.subs.pop(topic, None) if isinstance(topic, str) else None
        if sub is None:
            raise ProtocolError("not_subscribed", f"not subscribed to {topic!r}")
        self._drop_queued(sub)
        await self.channel_layer.group_discard(sub.group, self.channel_name)
        await self._control(
            {"op": "unsubscribed", "topic": topic, **({"id": content["id"]} if "id" in content else {})}
        )

    # --- live messages from the channel layer ------------------------------------------------------------------

    async def run_events(self, message: dict[str, Any]) -> None:
        sub = self.subs.get(f"run:{message['run']}")
        if sub is None or sub.stalled or not message["events"]:
            return
        events = message["events"]
        sub.want = max(sub.want, events[-1]["seq"])
        if sub.replaying:
            return  # the replay reads these from the journal
        fresh = sum(p["seq"] > sub.last for p in events)
        if fresh > self.buffer_frames - len(self.queue) and len(self.queue) < self.buffer_frames:
            sub.replaying = True  # a transaction too big for the room left: read it from the journal, paced
            self.wake_replayer.set()
            return
        for payload in events:
            seq = payload["seq"]
            if seq <= sub.last:
                continue  # already sent (replay/live seam, or a late duplicate)
            if seq > sub.last + 1 or payload.get("stub"):
                sub.replaying = True  # a gap (a message lost or reordered) or an oversized event: read the journal
                self.wake_replayer.set()
                return
            if not await self._enqueue(sub, seq, {"op": "event", "topic": sub.topic, **payload}):
                return
            sub.last = seq

    async def run_tokens(self, message: dict[str, Any]) -> None:
        """A batch of an agent's streamed text (not in the journal: sent as it comes, merged by offset)."""
        sub = self.subs.get(f"run:{message['run']}")
        if sub is not None and not sub.stalled:
            await self._enqueue(sub, 0, tokens.frame(sub.topic, message))

    async def run_summary(self, message: dict[str, Any]) -> None:
        sub = self.subs.get(message["topic"])
        if sub is None or sub.stalled:
            return
        if not self.sees_all and message["owner"] != self.user.pk:
            return
        s = message["run"]
        if sub.replaying:
            prev = sub.early.get(s["id"])
            if (prev is None or s["seq"] > prev["seq"]) and len(sub.early) < self.snapshot_runs * 4:
                sub.early[s["id"]] = s
            return
        await self._offer_summary(sub, s)

    async def _offer_summary(self, sub: Subscription, s: dict[str, Any]) -> None:
        if sub.is_new(s) and await self._enqueue(sub, 0, {"op": "run", "topic": sub.topic, "run": s}, s["id"]):
            sub.note(s)
