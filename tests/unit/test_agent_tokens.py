"""Live tokens: an agent step's streamed model text reaches websocket clients as it arrives, batched, without a
database row per token (pydantic-ai's real OpenAI model against ``tests/fake_openai.py``, the real Redis channel
layer, ``LiveConsumer`` through ``WebsocketCommunicator``, ``drain()`` running the run)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest
from channels.layers import get_channel_layer
from django.db import connections

from tests.fake_openai import FakeOpenAI
from tests.testapp import agent_http_flows as hf
from workflows.agents import streaming
from workflows.engine.publication import background
from workflows.live import payloads
from workflows.live import tokens as live_tokens
from workflows.models import AgentMessage, RunEvent
from workflows.testing import drain

from .test_consumer import WS, aio, db

pytestmark = pytest.mark.usefixtures("engine_db")

WORDS = [f"word{i}" for i in range(60)]
TEXT = " ".join(WORDS)


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("carol", password="pw-carol-123", is_staff=True)


@pytest.fixture
def slow_server():
    """The model answers TEXT, one word per chunk, a chunk every 40 ms (about 2.4 s of streaming)."""
    fake = FakeOpenAI(lambda request, n: {"content": TEXT, "delay": 0.04}).start()
    hf.point_at(fake.url)
    yield fake
    fake.stop()


def watching(client) -> tuple[concurrent.futures.Future, threading.Event]:
    """Run the websocket client ``client(ready)`` on an event loop in a thread of its own while the test's thread
    runs ``drain()`` (an RQ worker needs the main thread); ``ready`` is set once it has subscribed."""
    ready = threading.Event()

    def run():
        try:
            return asyncio.run(client(ready))
        finally:
            connections.close_all()

    future = concurrent.futures.ThreadPoolExecutor(1).submit(run)
    if not ready.wait(30):
        future.result(1)  # the client's own error, if it failed
        raise AssertionError("the websocket client did not subscribe")
    return future, ready


def merge(known: str, frame: dict) -> str:
    """What a client does with a tokens frame: the text up to its offset, then its text (ASCII: offsets are
    character counts)."""
    assert frame["offset"] <= len(known), f"a gap: have {len(known)} characters, frame at {frame['offset']}"
    return known[: frame["offset"]] + frame["text"] if frame["offset"] + len(frame["text"]) > len(known) else known


def tokens(frames: list[dict]) -> list[dict]:
    return [f for f in frames if f.get("op") == "tokens"]


def model_done(frame: dict) -> bool:
    return frame.get("op") == "event" and frame.get("kind") == "step_succeeded" and frame.get("step") == "desk/model#1"


def test_streaming__the_sink_is_connected_and_openai_streams():
    assert streaming.listening()
    assert streaming.can_stream(hf.desk.model)


def test_tokens__arrive_in_order_batched_and_the_stored_message_is_the_final_text(staff, slow_server):
    run = hf.desk_flow.start({"question": "say many words"})

    async def client(ready):
        ws = await WS.open(staff)
        assert (await ws.subscribe(f"run:{run.pk}"))["op"] == "subscribed"
        ready.set()
        frames = await ws.until(model_done, timeout=60)
        await ws.close()
        return frames

    future, _ = watching(client)
    drain(timeout=60)
    frames = future.result(60)

    got = tokens(frames)
    assert all(f["topic"] == f"run:{run.pk}" and f["step"] == "desk/model#1" for f in got)
    offsets = [f["offset"] for f in got]
    assert offsets == sorted(offsets) and offsets[0] == 0  # in order, from the start
    text = ""
    for f in got:
        assert f["offset"] == len(text)  # each batch continues where the previous one ended: no gap, no overlap
        text += f["text"]
    assert text == TEXT
    assert 2 <= len(got) < len(WORDS)  # streamed in several batches, fewer than the model's chunks
    assert frames.index(got[-1]) < frames.index(frames[-1])  # the tokens came before the final message's event

    run.refresh_from_db()
    assert run.status == "succeeded" and run.output == TEXT
    assert slow_server.requests[0].get("stream") is True
    messages = list(AgentMessage.objects.filter(run=run).order_by("seq"))
    assert [m.kind for m in messages] == ["request", "response"]  # two rows, not one per token
    assert messages[1].text == TEXT
    events = list(RunEvent.objects.filter(run=run).values_list("kind", flat=True))
    assert len(events) < 15 and not any("token" in k for k in events)  # the journal has no row per token


def test_tokens__a_subscriber_arriving_mid_stream_gets_the_text_so_far_then_the_rest(staff, slow_server):
    run = hf.desk_flow.start({"question": "say many words"})

    async def client(ready):
        first = await WS.open(staff)
        await first.subscribe(f"run:{run.pk}")
        ready.set()
        early = tokens(await first.until(lambda f: f.get("op") == "tokens" and f["offset"] > 0, timeout=60))
        late = await WS.open(staff)
        assert (await late.subscribe(f"run:{run.pk}"))["op"] == "subscribed"
        frames = await late.until(model_done, timeout=60)
        await first.close()
        await late.close()
        return early, frames

    future, _ = watching(client)
    drain(timeout=60)
    early, frames = future.result(60)

    got = tokens(frames)
    assert got and got[0]["offset"] == 0  # the text so far, from Redis, before the batches that follow
    seen_before = "".join(f["text"] for f in early)
    assert got[0]["text"].startswith(seen_before) and TEXT.startswith(got[0]["text"])
    assert len(got[0]["text"]) < len(TEXT)  # it arrived mid-stream
    text = ""
    for f in got:
        text = merge(text, f)
    assert text == TEXT


def test_tokens__nothing_is_left_in_redis_once_the_response_is_stored(staff, slow_server, redis_conn):
    run = hf.desk_flow.start({"question": "say many words"})
    drain(timeout=60)
    background().submit(lambda: None).result(10)  # the publication thread has sent what the stream handed it
    assert not redis_conn.exists(live_tokens.key(run.pk))

    async def client(ready):
        ready.set()
        late = await WS.open(staff)
        await late.subscribe(f"run:{run.pk}")
        frames = await late.until(lambda f: f.get("kind") == "run_succeeded", timeout=30)
        await late.close()
        return frames

    future, _ = watching(client)
    assert tokens(future.result(60)) == []  # a finished run has no partial text: its messages are in the database


def test_token_stream__batches_by_size_and_counts_offsets_as_javascript_does():
    got = []
    streaming.add_sink(got.append)
    try:
        stream = streaming.TokenStream(7, "a/model#1", interval=3600, max_chars=4)
        for piece in ["hé", "llo", " 👋", " w", "orld"]:
            stream.add(piece)
        stream.flush()
        stream.close()
    finally:
        streaming.remove_sink(got.append)
    batches = [b for b in got if b.path == "a/model#1"]
    assert [b.text for b in batches[:-1]] == ["héllo", " 👋 w", "orld"]  # each batch at least max_chars (but the last)
    assert [b.offset for b in batches[:-1]] == [0, 5, 10]  # the emoji is two UTF-16 code units
    assert batches[-1].done and batches[-1].so_far == "héllo 👋 world"
    assert "".join(b.text for b in batches) == "héllo 👋 world"


def test_can_stream__a_function_model_only_with_a_stream_function():
    from pydantic_ai.models.function import FunctionModel

    from tests.testapp import agent_flows

    assert not streaming.can_stream(agent_flows.support.model)  # its requests are made unstreamed, as before

    async def words(messages, info):
        yield "hi"

    assert streaming.can_stream(FunctionModel(agent_flows.support_script, stream_function=words))


@aio
async def test_tokens__a_connection_gets_the_tokens_of_the_runs_it_subscribed_to_only(staff):
    watched = await db(hf.desk_flow.start)({"question": "a"})
    other = await db(hf.desk_flow.start)({"question": "b"})
    ws = await WS.open(staff)
    await ws.subscribe(f"run:{watched.pk}")
    await ws.until(lambda f: f.get("kind") == "step_pending")  # the replay of its journal so far
    layer = get_channel_layer()
    for run in (other, watched):
        message = {"type": "run.tokens", "run": run.pk, "step": "desk/model#1", "text": f"run {run.pk}", "offset": 0}
        await layer.group_send(payloads.run_group(run.pk), message)
    frames = await ws.until(lambda f: f.get("op") == "tokens")
    while not await ws.comm.receive_nothing(0.5):  # and whatever else comes soon (the run's own events)
        frames.append(await ws.recv())
    expected = {"op": "tokens", "topic": f"run:{watched.pk}", "step": "desk/model#1", "text": f"run {watched.pk}"}
    assert tokens(frames) == [{**expected, "offset": 0}]
    await ws.close()
