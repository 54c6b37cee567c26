"""The websocket under bad input and changing authority: deep or huge frames, a topic with a trailing newline,
foreign origins (checked like CSRF: scheme, host and port), a logout or a permission change while connected."""

from __future__ import annotations

import pytest

from tests.unit.test_consumer import WS, aio

pytestmark = pytest.mark.usefixtures("engine_db")


@pytest.fixture
def fast_sweep(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "LIVE": {**settings.WORKFLOWS.get("LIVE", {}), "SWEEP_SECONDS": 0.2}}


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-12345")


async def still_open(ws: WS) -> None:
    await ws.send(op="ping", id="alive")
    assert await ws.recv() == {"op": "pong", "id": "alive"}


# --- 1. deep and huge frames ----------------------------------------------------------------------------------


@aio
async def test_frames__deep_or_huge_frames_are_error_frames_and_the_connection_survives(user):
    ws = await WS.open(user)
    try:
        for raw, words in (
            ('{"op": "ping", "id": ' + "[" * 30_000 + "]" * 30_000 + "}", "Nested deeper"),  # RecursionError before
            ('{"op": "ping", "id": ' + "[" * 100_000 + "]" * 100_000 + "}", "at most 65536"),
            ('{"op": "ping", "x": ' + "[" * 200 + "]" * 200 + "}", "Nested deeper than 64"),
            ('{"op": "ping", "x": "' + "x" * 70_000 + '"}', "at most 65536"),
            ('{"op": "ping", "x": NaN}', "not JSON"),
        ):
            await ws.comm.send_to(text_data=raw)
            reply = await ws.recv()
            assert reply["op"] == "error" and reply["code"] in ("bad_request", "bad_json"), reply
            assert words in reply["message"]
            await still_open(ws)
    finally:
        await ws.close()
