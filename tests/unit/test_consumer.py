"""The websocket protocol (``workflows.consumers``) and the publisher, through ``WebsocketCommunicator``.

Real pieces throughout: the Redis channel layer of the test settings, committed database rows
(``transactional_db``), the publisher registered by the app, and ``drain()`` to make runs progress.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections import Counter

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient
from django.utils.timezone import now

from tests.testapp import flows
from tests.unit.test_metrics import sampled
from workflows.engine import appends
from workflows.live import listeners, payloads, sender
from workflows.live.consumer import LiveConsumer
from workflows.models import Run, RunEvent
from workflows.store.journal import Journal
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")

db = database_sync_to_async  # sync code (engine, ORM, drain) from the async test bodies


def aio(fn):
    """Run an async test body in an event loop; sync calls made with ``db`` run on the test's own thread."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return async_to_sync(fn)(*args, **kwargs)

    return wrapper


class WS:
    """A test client speaking the protocol; acknowledges every frame unless ``ack=False``."""

    def __init__(self, comm: WebsocketCommunicator, ack: bool = True) -> None:
        self.comm, self.ack, self.received = comm, ack, 0

    @classmethod
    async def open(cls, user, ack: bool = True) -> WS:
        comm = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/")
        comm.scope["user"] = user
        connected, _ = await comm.connect(timeout=5)
        assert connected
        return cls(comm, ack)

    async def send(self, **frame) -> None:
        await self.comm.send_json_to(frame)

    async def recv(self, timeout: float = 5) -> dict:
        frame = await self.comm.receive_json_from(timeout)
        self.received += 1
        if self.ack:
            await self.send(op="ack", n=self.received)
        return frame

    async def subscribe(self, topic: str, **kw) -> dict:
        await self.send(op="subscribe", topic=topic, **kw)
        return await self.recv()

    async def until(self, predicate, timeout: float = 15) -> list[dict]:
        """Frames up to and including the first one that satisfies ``predicate``."""
        frames = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                frames.append(await self.recv(timeout=max(left, 0.01)))
            except TimeoutError:
                raise AssertionError(f"timed out after {timeout}s; got {frames}") from None
            if predicate(frames[-1]):
                return frames

    async def quiet(self, timeout: float = 0.3) -> None:
        assert await self.comm.receive_nothing(timeout)

    async def close(self) -> None:
        await self.comm.disconnect()


def kind_is(kind: str):
    return lambda f: f.get("op") == "event" and f.get("kind") == kind


def seqs(frames: list[dict]) -> list[int]:
    return [f["seq"] for f in frames if f.get("op") == "event"]


def journal(run_id: int) -> list[dict]:
    rows = RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "kind", "step", "data", "at")
    return [payloads.event_payload(*row) for row in rows]


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("carol", password="pw-carol-123", is_staff=True)


@pytest.fixture
def auditor(django_user_model):
    u = django_user_model.objects.create_user("dave", password="pw-dave-123")
    u.user_permissions.add(Permission.objects.get(codename="view_all_runs"))
    return django_user_model.objects.get(pk=u.pk)  # a fresh object: no stale permission cache


@pytest.fixture
def live_settings(settings):
    """``live_settings(**values)`` overrides ``WORKFLOWS["LIVE"]`` for the test."""

    def apply(**values):
        settings.WORKFLOWS = {**settings.WORKFLOWS, "LIVE": {**settings.WORKFLOWS.get("LIVE", {}), **values}}

    return apply


# --- connecting ------------------------------------------------------------------------------------------------


def _full_stack(origin: str, cookie: str | None = None) -> WebsocketCommunicator:
    from project.asgi import application

    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin.encode())]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/", headers=headers)


def _session_cookie(user) -> str:
    http = HttpClient()
    http.force_login(user)
    return http.cookies["sessionid"].value


@aio
async def test_consumer__refuses_anonymous_connections():
    comm = _full_stack("http://127.0.0.1:8000")
    connected, _ = await comm.connect(timeout=5)
    assert not connected


@aio
async def test_consumer__refuses_a_foreign_origin_and_accepts_an_allowed_one(user):
    cookie = await db(_session_cookie)(user)
    foreign = _full_stack("https://evil.example", cookie)
    assert (await foreign.connect(timeout=5))[0] is False
    allowed = _full_stack("http://127.0.0.1:8000", cookie)
    assert (await allowed.connect(timeout=5))[0] is True
    await allowed.send_json_to({"op": "ping", "id": 1})
    assert await allowed.receive_json_from(5) == {"op": "pong", "id": 1}
    await allowed.disconnect()


# --- replay and live -------------------------------------------------------------------------------------------


@aio
async def test_consumer__subscribe_replays_the_journal_then_streams_live_events_once(user):
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}", since=0, id="r1")
        assert reply["op"] == "subscribed" and reply["id"] == "r1" and reply["topic"] == f"run:{run.pk}"
        assert reply["since"] == 0 and reply["last_seq"] >= 2  # run_created, step_pending (step_queued may follow)
        frames = await ws.until(lambda f: f.get("seq") == reply["last_seq"])  # the replay
        await db(drain)()
        frames += await ws.until(kind_is("run_succeeded"))
        await ws.quiet()
    finally:
        await ws.close()
    expected = await db(journal)(run.pk)
    assert seqs(frames) == list(range(1, len(expected) + 1))  # every seq exactly once, in order
    assert [{k: f[k] for k in ("seq", "kind", "step", "data", "at")} for f in frames] == expected
    assert all(f["topic"] == f"run:{run.pk}" for f in frames)


@aio
async def test_consumer__since_replays_only_the_events_after_it(user):
    run = await db(flows.counter.start)({"value": 1}, user=user)
    await db(drain)()
    last = (await db(Run.objects.get)(pk=run.pk)).last_seq
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}", since=4)
        assert reply["last_seq"] == last
        frames = await ws.until(lambda f: f.get("seq") == last)
        await ws.quiet()
        assert seqs(frames) == list(range(5, last + 1))
        # a client that already has everything gets nothing, and a since past the end is an error
        assert (await ws.subscribe(f"run:{run.pk}", since=last))["op"] == "subscribed"
        await ws.quiet()
        error = await ws.subscribe(f"run:{run.pk}", since=last + 1)
        assert error["op"] == "error" and error["code"] == "bad_request"
    finally:
        await ws.close()


@aio
async def test_consumer__live_duplicates_and_stale_events_are_dropped_at_the_seam(user):
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        frames = await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        # the publisher's message for events the replay already sent arrives late: nothing is sent again
        replayed = [{k: f[k] for k in ("seq", "kind", "step", "data", "at")} for f in frames]
        await get_channel_layer().group_send(
            payloads.run_group(run.pk), {"type": "run.events", "run": run.pk, "events": replayed}
        )
        await ws.quiet()
        await db(drain)()
        frames += await ws.until(kind_is("run_succeeded"))
    finally:
        await ws.close()
    assert seqs(frames) == list(range(1, len(await db(journal)(run.pk)) + 1))


@aio
async def test_consumer__a_gap_in_live_events_is_filled_from_the_journal(user, monkeypatch):
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        with monkeypatch.context() as m:
            m.setattr(sender, "_send", lambda messages, timeout: None)  # these publications are lost
            await db(appends.append)(run.pk, "step_log", "", message="lost 1")
            await db(appends.append)(run.pk, "step_log", "", message="lost 2")
        await ws.quiet()
        await db(appends.append)(run.pk, "step_log", "", message="published")
        frames = await ws.until(lambda f: f.get("data", {}).get("message") == "published")
    finally:
        await ws.close()
    assert [f["data"]["message"] for f in frames] == ["lost 1", "lost 2", "published"]
    assert seqs(frames) == list(range(reply["last_seq"] + 1, reply["last_seq"] + 4))


@aio
async def test_consumer__the_sweep_sends_events_whose_publication_was_lost(user, monkeypatch, live_settings):
    live_settings(SWEEP_SECONDS=0.2)
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        monkeypatch.setattr(sender, "_send", lambda messages, timeout: None)  # Redis "down" for every publisher
        await db(drain)()
        frames = await ws.until(kind_is("run_succeeded"))
    finally:
        await ws.close()
    assert seqs(frames) == list(range(reply["last_seq"] + 1, len(await db(journal)(run.pk)) + 1))


@aio
async def test_consumer__the_sweep_brings_the_runs_list_up_to_date(user, monkeypatch, live_settings):
    live_settings(SWEEP_SECONDS=0.2)
    old = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        await ws.subscribe("runs")
        assert [r["id"] for r in (await ws.recv())["runs"]] == [old.pk]
        monkeypatch.setattr(sender, "_send", lambda messages, timeout: None)  # no summary is ever published
        new = await db(flows.counter.start)({"value": 2}, user=user)
        await db(drain)()
        done: set[int] = set()

        def both_succeeded(f):
            if f["run"]["status"] == "succeeded":
                done.add(f["run"]["id"])
            return len(done) == 2

        await ws.until(both_succeeded)
    finally:
        await ws.close()
    assert done == {old.pk, new.pk}


@aio
async def test_consumer__an_oversized_event_is_read_from_the_journal(user, live_settings):
    live_settings(MAX_EVENT_BYTES=50)
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        big = "x" * 500
        await db(appends.append)(run.pk, "step_log", "", message=big)
        frame = (await ws.until(kind_is("step_log")))[-1]
    finally:
        await ws.close()
    assert frame["data"]["message"] == big and frame["seq"] == reply["last_seq"] + 1
    assert "stub" not in frame


@aio
async def test_consumer__unsubscribe_stops_the_stream(user):
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        await ws.send(op="unsubscribe", topic=f"run:{run.pk}", id=7)
        assert await ws.recv() == {"op": "unsubscribed", "topic": f"run:{run.pk}", "id": 7}
        await db(drain)()
        await ws.quiet()
    finally:
        await ws.close()


# --- errors keep the connection open ---------------------------------------------------------------------------


@aio
async def test_consumer__every_protocol_error_is_a_frame_and_the_connection_stays_open(user, live_settings):
    live_settings(MAX_SUBSCRIPTIONS=2)
    runs = [await db(flows.counter.start)({"value": i}, user=user) for i in range(3)]
    ws = await WS.open(user)

    async def error_for(raw: str | None = None, **frame) -> dict:
        if raw is not None:
            await ws.comm.send_to(text_data=raw)
        else:
            await ws.send(**frame)
        reply = await ws.recv()
        assert reply["op"] == "error", reply
        await ws.send(op="ping", id="alive")  # still open and answering
        assert await ws.recv() == {"op": "pong", "id": "alive"}
        return reply

    try:
        assert (await error_for("{not json"))["code"] == "bad_json"
        assert (await error_for("[1, 2]"))["code"] == "bad_request"
        await ws.comm.send_to(bytes_data=b"\x00\x01")
        assert (await ws.recv())["code"] == "bad_json"
        assert (await error_for(op="shout", id=3)) == {
            "op": "error",
            "code": "unknown_op",
            "message": "unknown op 'shout': use subscribe, unsubscribe, ack or ping",
            "id": 3,
        }
        assert (await error_for(op="subscribe", topic="run:abc"))["code"] == "unknown_topic"
        assert (await error_for(op="subscribe", topic="steps"))["code"] == "unknown_topic"
        assert (await error_for(op="subscribe", topic=42))["code"] == "unknown_topic"
        assert (await error_for(op="subscribe", topic="workflow:no-such-flow"))["code"] == "not_found"
        assert (await error_for(op="subscribe", topic=f"run:{runs[0].pk}", since=-1))["code"] == "bad_request"
        assert (await error_for(op="subscribe", topic=f"run:{runs[0].pk}", since="3"))["code"] == "bad_request"
        assert (await error_for(op="subscribe", topic="runs", id={"a": 1}))["code"] == "bad_request"
        assert (await error_for(op="unsubscribe", topic="runs"))["code"] == "not_subscribed"
        assert (await error_for(op="ack", n=-1))["code"] == "bad_request"
        for run in runs[:2]:
            reply = await ws.subscribe(f"run:{run.pk}")
            assert reply["op"] == "subscribed"
            await ws.until(lambda f, reply=reply: f.get("topic") == reply["topic"] and f["seq"] == reply["last_seq"])
        too_many = await error_for(op="subscribe", topic=f"run:{runs[2].pk}", id="third")
        assert too_many["code"] == "too_many_subscriptions" and too_many["id"] == "third"
        # subscribing again to a topic already held is a restart, not a new subscription
        assert (await ws.subscribe(f"run:{runs[1].pk}", since=reply["last_seq"]))["op"] == "subscribed"
        await ws.quiet()
    finally:
        await ws.close()


# --- permissions -----------------------------------------------------------------------------------------------


@aio
async def test_consumer__a_forbidden_run_answers_like_a_missing_one(user, bob):
    theirs = await db(flows.counter.start)({"value": 1}, user=bob)
    ws = await WS.open(user)
    try:
        forbidden = await ws.subscribe(f"run:{theirs.pk}", id="a")
        missing = await ws.subscribe(f"run:{theirs.pk + 1000}", id="a")
    finally:
        await ws.close()
    assert forbidden["code"] == missing["code"] == "not_found"
    assert forbidden["message"].replace(str(theirs.pk), "N") == missing["message"].replace(str(theirs.pk + 1000), "N")


@pytest.mark.parametrize("who", ["staff", "auditor"])
def test_consumer__staff_and_view_all_runs_holders_see_every_run(who, request, bob):
    async_to_sync(_sees_every_run)(request.getfixturevalue(who), bob)


async def _sees_every_run(viewer, bob):
    theirs = await db(flows.counter.start)({"value": 1}, user=bob)
    ws = await WS.open(viewer)
    try:
        reply = await ws.subscribe(f"run:{theirs.pk}")
        assert reply["op"] == "subscribed"
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        snapshot = await ws.subscribe("runs")
        assert snapshot["op"] == "subscribed"
        snapshot = await ws.recv()
        assert snapshot["op"] == "snapshot" and [r["id"] for r in snapshot["runs"]] == [theirs.pk]
    finally:
        await ws.close()


@aio
async def test_consumer__runs_topic_shows_a_user_only_their_own_runs(user, bob, staff):
    mine = await db(flows.counter.start)({"value": 1}, user=user)
    await db(flows.counter.start)({"value": 2}, user=bob)
    alice, carol = await WS.open(user), await WS.open(staff)
    try:
        for ws in (alice, carol):
            assert (await ws.subscribe("runs", id="list"))["op"] == "subscribed"
        alice_snapshot, carol_snapshot = await alice.recv(), await carol.recv()
        assert [r["id"] for r in alice_snapshot["runs"]] == [mine.pk]
        assert len(carol_snapshot["runs"]) == 2
        later_theirs = await db(flows.counter.start)({"value": 3}, user=bob)
        later_mine = await db(flows.counter.start)({"value": 4}, user=user)
        await db(drain)()
        seen = await alice.until(lambda f: f.get("run", {}).get("id") == later_mine.pk and f["run"]["progress"] == 1)
        seen_by_carol = await carol.until(
            lambda f: f.get("run", {}).get("id") == later_theirs.pk and f["run"]["status"] == "succeeded"
        )
        await alice.quiet()
    finally:
        await alice.close()
        await carol.close()
    assert {f["run"]["id"] for f in seen} <= {mine.pk, later_mine.pk}
    assert later_theirs.pk in {f["run"]["id"] for f in seen_by_carol}


# --- summaries -------------------------------------------------------------------------------------------------


@aio
async def test_consumer__workflow_topic_streams_summaries_of_that_workflows_runs_in_seq_order(user):
    old = await db(flows.counter.start)({"value": 0}, user=user)
    ws = await WS.open(user)
    try:
        assert (await ws.subscribe("workflow:counter"))["op"] == "subscribed"
        snapshot = await ws.recv()
        assert snapshot["op"] == "snapshot" and snapshot["topic"] == "workflow:counter"
        (entry,) = snapshot["runs"]
        assert entry["id"] == old.pk and entry["workflow"] == "counter" and entry["status"] == "pending"
        assert set(entry) == {
            "id", "workflow", "status", "seq", "progress", "created_at", "started_at", "finished_at", "updated_at",
            "error",
        }  # fmt: skip
        other = await db(flows.chatty_flow.start)({"value": 1}, user=user)  # another workflow: not on this topic
        run = await db(flows.counter.start)({"value": 1}, user=user)
        await db(drain)()
        done: set[int] = set()

        def both_done(f):
            if f["run"]["status"] == "succeeded":
                done.add(f["run"]["id"])
            return done == {run.pk, old.pk}

        frames = await ws.until(both_done)
        await ws.quiet()
    finally:
        await ws.close()
    assert other.pk not in {f["run"]["id"] for f in frames}
    for run_id in (run.pk, old.pk):
        mine = [f["run"] for f in frames if f["run"]["id"] == run_id]
        assert [s["seq"] for s in mine] == sorted({s["seq"] for s in mine})  # increasing, no duplicates
        assert mine[-1]["progress"] == 1.0 and mine[-1]["finished_at"]


@aio
async def test_consumer__summaries_of_log_and_progress_events_carry_the_run_state(user):
    # ctx.log / ctx.progress append events outside a transition, with a partly loaded run
    run = await db(flows.chatty_flow.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        await ws.subscribe("runs")
        await ws.recv()  # snapshot
        await db(drain)()
        frames = await ws.until(lambda f: f["run"]["status"] == "succeeded")
    finally:
        await ws.close()
    assert {f["run"]["workflow"] for f in frames} == {"chatty"}
    assert "running" in {f["run"]["status"] for f in frames}
    final = await db(Run.objects.get)(pk=run.pk)
    assert frames[-1]["run"]["seq"] == final.last_seq


# --- backpressure ----------------------------------------------------------------------------------------------


@aio
async def test_consumer__a_stalled_client_is_told_to_resync_and_others_are_not_slowed(user, live_settings):
    live_settings(WINDOW_BYTES=2000, BUFFER_FRAMES=6, REPLAY_BATCH=2)
    dropped = await db(sampled)("workflows_websocket_dropped_frames_total")
    run = await db(flows.counter.start)({"value": 1}, user=user)
    stalled, healthy = await WS.open(user, ack=False), await WS.open(user)
    try:
        for ws in (stalled, healthy):
            assert (await ws.subscribe(f"run:{run.pk}"))["op"] == "subscribed"
        reader = asyncio.create_task(healthy.until(lambda f: f.get("data", {}).get("message") == "line 59"))
        for i in range(60):  # the engine is never held up by the stalled client
            await db(appends.append)(run.pk, "step_log", "", message=f"line {i}")
        last = (await db(Run.objects.get)(pk=run.pk)).last_seq
        good = await reader
        assert seqs(good) == list(range(1, last + 1))

        got = await stalled.until(lambda f: f["op"] == "resync")
        resync = got.pop()
        assert resync == {"op": "resync", "topic": f"run:{run.pk}", "since": seqs(got)[-1]}
        assert seqs(got) == list(range(1, len(got) + 1))  # what it got, it got in order
        assert await db(sampled)("workflows_websocket_dropped_frames_total") > dropped  # counted for the operator
        await stalled.quiet()  # nothing more for that topic until it subscribes again

        stalled.ack = True
        await stalled.send(op="ack", n=stalled.received)
        assert (await stalled.subscribe(f"run:{run.pk}", since=resync["since"]))["op"] == "subscribed"
        rest = await stalled.until(lambda f: f.get("seq") == last)
    finally:
        await stalled.close()
        await healthy.close()
    assert Counter(seqs(got) + seqs(rest)) == Counter(range(1, last + 1))  # everything, exactly once


@aio
async def test_consumer__a_long_history_is_replayed_at_the_pace_of_acknowledgements(user, live_settings):
    live_settings(WINDOW_BYTES=3000, BUFFER_FRAMES=8, REPLAY_BATCH=3)
    run = await db(flows.counter.start)({"value": 1}, user=user)
    for i in range(100):
        await db(appends.append)(run.pk, "step_log", "", message=f"line {i}")
    last = (await db(Run.objects.get)(pk=run.pk)).last_seq
    ws = await WS.open(user, ack=False)
    try:
        await ws.subscribe(f"run:{run.pk}")
        first = []
        while not await ws.comm.receive_nothing(0.5):  # without acks only a window's worth arrives
            first.append(await ws.recv())
        assert 0 < len(first) < last and all(f["op"] == "event" for f in first)
        ws.ack = True
        await ws.send(op="ack", n=ws.received)
        rest = await ws.until(lambda f: f.get("seq") == last)
    finally:
        await ws.close()
    assert seqs(first + rest) == list(range(1, last + 1))  # paced, never overflowed: no resync


@aio
async def test_consumer__a_transaction_bigger_than_the_buffer_is_paced_not_resynced(user, live_settings):
    live_settings(BUFFER_FRAMES=10, REPLAY_BATCH=4)
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        last = await db(_one_big_transaction)(run.pk, 40)
        frames = await ws.until(lambda f: f.get("seq") == last)
    finally:
        await ws.close()
    assert seqs(frames) == list(range(reply["last_seq"] + 1, last + 1)) and len(frames) == 40


def _one_big_transaction(run_id: int, n: int) -> int:
    from django.db import transaction

    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        journal = Journal(run)
        for i in range(n):
            journal.add("step_log", "", message=f"line {i}")
        journal.flush()
        Run.objects.filter(pk=run_id).update(last_seq=run.last_seq)
    return run.last_seq


@aio
async def test_consumer__a_slow_runs_list_gets_the_latest_state_of_each_run_not_every_step(user, live_settings):
    live_settings(WINDOW_BYTES=1, BUFFER_FRAMES=3)  # one frame in flight, three queued
    ws = await WS.open(user, ack=False)
    try:
        await ws.subscribe("runs")
        assert (await ws.recv())["op"] == "snapshot"  # in flight, not acknowledged: the window is now shut
        runs = [await db(flows.counter.start)({"value": i}, user=user) for i in range(2)]
        await db(drain)()  # a dozen summaries per run, while the client is silent
        await ws.quiet()
        ws.ack = True
        await ws.send(op="ack", n=ws.received)
        frames = []
        while not await ws.comm.receive_nothing(0.5):
            frames.append(await ws.recv())
    finally:
        await ws.close()
    assert "resync" not in {f["op"] for f in frames}
    assert sorted(f["run"]["id"] for f in frames) == sorted(r.pk for r in runs)  # one frame per run
    assert {f["run"]["status"] for f in frames} == {"succeeded"}


# --- publication -----------------------------------------------------------------------------------------------


@aio
async def test_publish__a_forked_work_horse_publishes_before_it_vanishes(user, live_settings):
    live_settings(SWEEP_SECONDS=3600)  # no safety net: the event must come from the child's publication
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        reply = await ws.subscribe(f"run:{run.pk}")
        await ws.until(lambda f: f.get("seq") == reply["last_seq"])
        loaded = await db(Run.objects.select_related("workflow").get)(pk=run.pk)
        event = RunEvent(run=loaded, seq=loaded.last_seq + 1, kind="step_log", data={"message": "bye"}, at=now())
        pid = os.fork()
        if pid == 0:  # like an RQ work horse: publish, then leave with os._exit (no atexit, no thread joins)
            try:
                sender.publish([event])
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        frame = (await ws.until(kind_is("step_log"), timeout=5))[-1]
    finally:
        await ws.close()
    assert frame["seq"] == event.seq and frame["data"] == {"message": "bye"}


def test_publish__from_a_thread_that_runs_an_event_loop_still_goes_out(user):
    run = flows.counter.start({"value": 1}, user=user)
    loaded = Run.objects.select_related("workflow").get(pk=run.pk)
    event = RunEvent(run=loaded, seq=loaded.last_seq + 1, kind="step_log", data={"message": "hi"}, at=now())
    layer = get_channel_layer()

    async def scenario() -> tuple[int, dict]:
        channel = await layer.new_channel()
        await layer.group_add(payloads.run_group(run.pk), channel)
        dropped = sender.dropped
        sender.publish([event])  # a sync call while this thread runs a loop, as under Playwright's sync API
        return dropped, await asyncio.wait_for(layer.receive(channel), 5)

    dropped, message = asyncio.run(scenario())
    assert sender.dropped == dropped
    assert [e["seq"] for e in message["events"]] == [event.seq]


def test_listeners__a_group_counts_while_it_has_a_member_that_has_not_expired():
    from channels_redis.core import RedisChannelLayer

    layer = get_channel_layer()
    assert listeners.supported(layer)
    short = RedisChannelLayer(hosts=layer.hosts, prefix=layer.prefix, group_expiry=1)  # same keys, members age fast
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("listened-a", channel)
    try:
        assert listeners.listened(layer, {"listened-a", "listened-b"}, 5) == {"listened-a"}
        deadline = time.monotonic() + 30
        while listeners.listened(short, {"listened-a"}, 5) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listeners.listened(short, {"listened-a"}, 5) == set()  # channels-redis drops it as stale too
        assert listeners.listened(layer, {"listened-a"}, 5) == {"listened-a"}
    finally:
        async_to_sync(layer.group_discard)("listened-a", channel)
        listeners.forget(short)
    assert listeners.listened(layer, {"listened-a"}, 5) == set()


def test_publish__sends_only_to_groups_with_a_listener_and_not_at_all_without_one(user, monkeypatch):
    run = flows.counter.start({"value": 1}, user=user)
    loaded = Run.objects.select_related("workflow").get(pk=run.pk)
    event = RunEvent(run=loaded, seq=loaded.last_seq + 1, kind="step_log", data={"message": "hi"}, at=now())
    sender.reset()
    sent: list[list[str]] = []
    real = sender._Sender._send

    async def recording(self, messages, timeout):
        sent.append([group for group, _ in messages])
        await real(self, messages, timeout)

    monkeypatch.setattr(sender._Sender, "_send", recording)
    sender.publish([event])  # nobody listens: no send, no event loop
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(payloads.run_group(run.pk), channel)
    try:
        sender.publish([event])
        message = async_to_sync(layer.receive)(channel)
    finally:
        async_to_sync(layer.group_discard)(payloads.run_group(run.pk), channel)
        sender.reset()
    assert sent == [[payloads.run_group(run.pk)]]
    assert [e["seq"] for e in message["events"]] == [event.seq]


def test_publish__a_dead_channel_layer_never_fails_or_stalls_a_run(settings, live_settings):
    live_settings(PUBLISH_TIMEOUT=0.5, PUBLISH_RETRY_AFTER=60)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["unix:///nonexistent/redis.sock"]},
        }
    }
    sender.reset()
    dropped = sender.dropped
    try:
        run = flows.counter.start({"value": 1})
        drain()
        run.refresh_from_db()
    finally:
        sender.reset()
    assert run.status == "succeeded" and run.output == {"value": 3}
    assert sender.dropped > dropped  # logged and dropped, then paused rather than retried per transition
    assert list(RunEvent.objects.filter(run=run).values_list("seq", flat=True)) == list(range(1, run.last_seq + 1))


def test_publish__one_message_per_group_per_transaction(user):
    run = flows.counter.start({"value": 1}, user=user)
    run.refresh_from_db()
    evs = list(RunEvent.objects.filter(run=run).select_related("run__workflow"))
    messages = payloads.messages_for(evs)
    assert [g for g, _ in messages] == [
        payloads.run_group(run.pk),
        payloads.RUNS_GROUP,
        payloads.workflow_group("counter"),
    ]
    run_msg, runs_msg, wf_msg = (m for _, m in messages)
    assert [e["seq"] for e in run_msg["events"]] == [e.seq for e in sorted(evs, key=lambda e: e.seq)]
    assert runs_msg["owner"] == user.pk and runs_msg["topic"] == "runs" and wf_msg["topic"] == "workflow:counter"
    assert runs_msg["run"]["id"] == run.pk and runs_msg["run"]["seq"] == run.last_seq
    json.dumps(messages)  # plain JSON types: msgpack-safe


def _recording(monkeypatch) -> list[tuple[float, list]]:
    """Every publication from now on, as (wall-clock time, messages), instead of sending it."""
    sent: list[tuple[float, list]] = []
    monkeypatch.setattr(sender, "_send", lambda messages, timeout: sent.append((time.time(), messages)))
    return sent


def _events_of(batch: list, run_id: int) -> list[dict]:
    return [e for group, m in batch if group == payloads.run_group(run_id) for e in m["events"]]


@pytest.mark.parametrize("hold", [60, 0])
def test_publish__a_workers_back_to_back_transitions_go_out_together_within_the_hold(
    hold, user, monkeypatch, live_settings
):
    live_settings(HOLD_SECONDS=hold)
    run = flows.counter.start({"value": 1}, user=user)
    sent = _recording(monkeypatch)
    drain()  # one job runs both steps (eager): claim, handoff and completion commit one after another
    run.refresh_from_db()
    assert run.status == "succeeded"
    if hold:  # one message per group for the whole job, sent when it ended
        assert len(sent) == 1 and [g for g, _ in sent[0][1]].count(payloads.RUNS_GROUP) == 1
    else:
        assert len(sent) == 3  # claim; first step done and second running; second done
    seqs = [e["seq"] for _, batch in sent for e in _events_of(batch, run.pk)]
    assert seqs == list(range(seqs[0], run.last_seq + 1))  # every event once, in order
    last = [m["run"] for g, m in sent[-1][1] if g == payloads.RUNS_GROUP][-1]
    assert last["status"] == "succeeded" and last["seq"] == run.last_seq  # the summary is the latest state


def test_publish__a_step_that_outlasts_the_hold_is_shown_running_while_it_runs(user, monkeypatch, live_settings):
    live_settings(HOLD_SECONDS=0.05)
    run = flows.long_flow.start({"value": 1}, user=user)  # its first step sleeps 1 s
    sent = _recording(monkeypatch)
    drain()
    sleeper = run.step("sleeper")
    shown = next(at for at, batch in sent for e in _events_of(batch, run.pk) if e["kind"] == "step_running")
    assert shown < sleeper.finished_at.timestamp() - 0.5  # the watchdog sent it, not the step's end


def test_publish__a_steps_log_line_goes_out_when_logged_with_what_was_held_before_it(user, monkeypatch, live_settings):
    live_settings(HOLD_SECONDS=60)
    run = flows.chatty_flow.start({"value": 1}, user=user)
    sent = _recording(monkeypatch)
    drain()
    kinds = [[e["kind"] for e in _events_of(batch, run.pk)] for _, batch in sent]
    logged = next(i for i, batch in enumerate(kinds) if "step_log" in batch)
    assert "step_running" in kinds[logged] and kinds[logged][-1] == "step_log"  # held events first, then it
    assert "run_succeeded" not in kinds[logged] and "run_succeeded" in kinds[-1]


def test_channel_layer__reads_outlast_the_blocking_receive():
    """redis-py 8's default 5 s read timeout equals channels-redis's 5 s BZPOPMIN: idle consumers would die."""
    from channels_redis.core import RedisChannelLayer

    layer = get_channel_layer()
    pool = layer.create_pool(0)
    assert (pool.connection_kwargs.get("socket_timeout") or float("inf")) > RedisChannelLayer.brpop_timeout
