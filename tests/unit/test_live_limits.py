"""The websocket's memory is bounded in bytes: the queue of one connection (``LIVE["MAX_BUFFER_BYTES"]``), the
journal read per replay batch, a connection whose client will not drain (closed after ``DRAIN_SECONDS``) and the
connections one user may hold across daphne processes (``MAX_CONNECTIONS_PER_USER``, counted in Redis).

Daphne's memory with 5 stalled clients is measured by ``bench/stalled_clients.py``."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.testapp import flows
from tests.unit.test_consumer import WS, aio, db, seqs
from workflows.engine import appends
from workflows.live import quota, reads
from workflows.live.catchup import NOT_DRAINING
from workflows.models import Run

pytestmark = pytest.mark.usefixtures("engine_db")


@pytest.fixture
def live_settings(settings):
    def apply(**values):
        settings.WORKFLOWS = {**settings.WORKFLOWS, "LIVE": {**settings.WORKFLOWS.get("LIVE", {}), **values}}

    return apply


async def closed_with(ws: WS, timeout: float = 15) -> tuple[int, list[dict]]:
    """Read until the server closes the connection: (close code, the frames before it)."""
    frames = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        output = await ws.comm.receive_output(max(deadline - loop.time(), 0.01))
        if output["type"] == "websocket.close":
            return output.get("code"), frames
        frames.append(json.loads(output["text"]))


@aio
async def test_buffer__a_stalled_client_is_resynced_once_its_queue_holds_max_buffer_bytes(user, live_settings):
    # Plenty of frames allowed, few bytes: the bytes bound alone must stop the queue.
    live_settings(WINDOW_BYTES=2000, BUFFER_FRAMES=1000, MAX_BUFFER_BYTES=20_000)
    run = await db(flows.counter.start)({"value": 1}, user=user)
    stalled = await WS.open(user, ack=False)
    try:
        assert (await stalled.subscribe(f"run:{run.pk}"))["op"] == "subscribed"
        for i in range(60):  # 60 events of 1 kB: 60 kB, three times the buffer
            await db(appends.append)(run.pk, "step_log", "", message=f"{i:04} " + "x" * 1000)
        got = await stalled.until(lambda f: f["op"] == "resync")
        resync = got.pop()
        assert resync["topic"] == f"run:{run.pk}" and resync["since"] == seqs(got)[-1]
        assert len(got) < 30  # the window and the buffer's bytes, not 60 frames
        await stalled.quiet()
    finally:
        await stalled.close()


def test_buffer__a_replay_reads_at_most_max_bytes_of_events_per_batch(user, engine_db):
    run = flows.counter.start({"value": 1}, user=user)
    start = Run.objects.get(pk=run.pk).last_seq  # the run's own first events
    for i in range(10):
        appends.append(run.pk, "step_log", "", message=f"{i} " + "x" * 1000)
    read = reads.events_after.func  # the sync function under database_sync_to_async
    events, limit = read(run.pk, start, 100, 2500)
    assert len(events) == limit == 3  # 1 kB each: the third passes 2,500 bytes
    assert [e["seq"] for e in events] == [start + 1, start + 2, start + 3]
    events, limit = read(run.pk, start, 100, 10)  # always at least one, whatever its size
    assert len(events) == limit == 1
    events, limit = read(run.pk, start, 100, 1 << 30)
    assert len(events) == 10 and limit == 100  # fewer than the limit: caught up


@aio
async def test_drain__a_client_that_acknowledges_nothing_is_closed_and_one_that_does_stays(user, live_settings):
    live_settings(WINDOW_BYTES=500, SWEEP_SECONDS=0.2, DRAIN_SECONDS=1.0)
    run = await db(flows.counter.start)({"value": 1}, user=user)
    for i in range(20):
        await db(appends.append)(run.pk, "step_log", "", message=f"line {i}")
    last = (await db(Run.objects.get)(pk=run.pk)).last_seq
    stalled, healthy = await WS.open(user, ack=False), await WS.open(user)
    try:
        for ws in (stalled, healthy):
            await ws.send(op="subscribe", topic=f"run:{run.pk}")
        await healthy.until(lambda f: f.get("seq") == last)
        code, frames = await closed_with(stalled)
        assert code == NOT_DRAINING
        assert frames[0]["op"] == "subscribed" and 0 < len(seqs(frames)) < last
        await asyncio.sleep(1.5)  # several sweeps past DRAIN_SECONDS: an idle, drained client is not closed
        await healthy.send(op="ping", id="alive")
        assert await healthy.recv() == {"op": "pong", "id": "alive"}
    finally:
        await healthy.close()


@aio
async def test_connections__a_user_holds_at_most_max_connections_per_user(user, bob, live_settings, redis_conn):
    live_settings(MAX_CONNECTIONS_PER_USER=2)
    first, second = await WS.open(user), await WS.open(user)
    others = await WS.open(bob)  # per user: bob has his own
    try:
        third = await WS.open(user)
        code, frames = await closed_with(third)
        assert code == quota.TOO_MANY_CONNECTIONS
        assert frames == [{"op": "error", "code": "too_many_connections", "message": frames[0]["message"]}]
        assert "at most 2" in frames[0]["message"]

        await first.close()  # a slot comes back when a connection ends
        fourth = await WS.open(user)
        await fourth.send(op="ping")
        assert await fourth.recv() == {"op": "pong"}
        await fourth.close()
    finally:
        await second.close()
        await others.close()
    assert redis_conn.zcard(quota.key(user.pk)) == 0  # every one released


@aio
async def test_connections__counted_across_processes_and_a_crashed_ones_slots_expire(user, live_settings, redis_conn):
    live_settings(MAX_CONNECTIONS_PER_USER=2)
    for channel in ("daphne-b!1", "daphne-b!2"):  # another daphne's connections, in the shared Redis
        assert await quota.claim(user.pk, channel)
    assert 0 < redis_conn.ttl(quota.key(user.pk)) <= quota.lease_seconds() + 1  # the set expires too
    refused = await WS.open(user)
    assert (await closed_with(refused))[0] == quota.TOO_MANY_CONNECTIONS

    # that daphne crashed: nobody released its slots, and their leases run out
    redis_conn.zadd(quota.key(user.pk), {"daphne-b!1": 0, "daphne-b!2": 0})
    ws = await WS.open(user)
    try:
        await ws.send(op="ping")
        assert await ws.recv() == {"op": "pong"}
    finally:
        await ws.close()


@aio
async def test_connections__without_redis_a_connection_is_let_in(user, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "REDIS_URL": "redis://127.0.0.1:1/0"}
    assert await quota.claim(user.pk, "daphne-a!1")
    await quota.release(user.pk, "daphne-a!1")  # and releasing does not raise
