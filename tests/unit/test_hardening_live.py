"""The websocket under bad input and changing authority: deep or huge frames, a topic with a trailing newline,
foreign origins (checked like CSRF: scheme, host and port), a logout or a permission change while connected."""

from __future__ import annotations

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.test import Client as HttpClient

from tests.testapp import flows
from tests.unit.test_consumer import WS, aio, db
from workflows.asgi import origin_allowed
from workflows.live.authority import SESSION_ENDED

pytestmark = pytest.mark.usefixtures("engine_db")


@pytest.fixture
def fast_sweep(settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "LIVE": {**settings.WORKFLOWS.get("LIVE", {}), "SWEEP_SECONDS": 0.2}}


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


# --- 8. topics match whole --------------------------------------------------------------------------------------


@aio
async def test_topics__a_trailing_newline_is_an_unknown_topic(user):
    run = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(user)
    try:
        for topic in ("runs\n", f"run:{run.pk}\n", "workflow:counter\n"):
            reply = await ws.subscribe(topic)
            assert reply["op"] == "error" and reply["code"] == "unknown_topic", reply
        await still_open(ws)
    finally:
        await ws.close()


# --- 9. origins like CSRF ---------------------------------------------------------------------------------------


def scope(origin: str | None, host: str = "127.0.0.1:8000", scheme: str = "ws") -> dict:
    headers = [(b"host", host.encode())] + ([(b"origin", origin.encode())] if origin is not None else [])
    return {"type": "websocket", "scheme": scheme, "headers": headers}


def test_origins__scheme_host_and_port_must_match_or_be_trusted(settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", ".example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.trusted.example"]
    assert origin_allowed(scope("http://127.0.0.1:8000"))
    assert not origin_allowed(scope("http://127.0.0.1:9999"))  # another port: another origin
    assert not origin_allowed(scope("https://127.0.0.1:8000"))  # another scheme
    assert not origin_allowed(scope("http://127.0.0.1"))  # port 80
    assert not origin_allowed(scope(None))
    assert not origin_allowed(scope("null"))
    assert origin_allowed(scope("https://dash.example.com", host="dash.example.com", scheme="wss"))
    assert not origin_allowed(scope("http://dash.example.com", host="dash.example.com", scheme="wss"))
    assert not origin_allowed(scope("http://evil.test:8000", host="evil.test:8000"))  # not in ALLOWED_HOSTS
    assert origin_allowed(scope("https://a.trusted.example"))
    assert not origin_allowed(scope("http://a.trusted.example"))


@aio
async def test_origins__the_asgi_application_refuses_a_page_on_another_port(user):
    from project.asgi import application

    http = HttpClient()
    await db(http.force_login)(user)
    cookie = http.cookies["sessionid"].value

    async def connects(origin: str) -> bool:
        headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin.encode())]
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
        comm = WebsocketCommunicator(application, "/ws/", headers=headers)
        connected, _ = await comm.connect(timeout=5)
        await comm.disconnect()
        return connected

    assert not await connects("http://127.0.0.1:9999")
    assert await connects("http://127.0.0.1:8000")


# --- 10. logout and permission changes reach open connections ---------------------------------------------------


@aio
async def test_sessions__a_logout_closes_the_connection_at_the_next_sweep(user, fast_sweep):
    from project.asgi import application

    http = HttpClient()
    await db(http.force_login)(user)
    cookie = http.cookies["sessionid"].value
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]
    headers.append((b"cookie", f"sessionid={cookie}".encode()))
    comm = WebsocketCommunicator(application, "/ws/", headers=headers)
    assert (await comm.connect(timeout=5))[0]
    try:
        await comm.send_json_to({"op": "subscribe", "topic": "runs"})
        assert (await comm.receive_json_from(5))["op"] == "subscribed"
        await db(http.logout)()
        frames = []  # the next sweep finds the session gone: an error frame, then the close
        while True:
            output = await comm.receive_output(15)
            if output["type"] == "websocket.close":
                break
            frames.append(output)
        assert output["code"] == SESSION_ENDED
        assert any(b"session_ended" in (f.get("text") or "").encode() for f in frames)
    finally:
        await comm.disconnect()


@aio
async def test_sessions__a_revoked_permission_ends_run_topics(user, bob, fast_sweep):
    perm = await db(Permission.objects.get)(codename="view_all_runs")
    await db(lambda: bob.user_permissions.add(perm))()
    bob = await db(type(bob).objects.get)(pk=bob.pk)
    alices = await db(flows.counter.start)({"value": 1}, user=user)
    ws = await WS.open(bob)
    try:
        assert (await ws.subscribe(f"run:{alices.pk}"))["op"] == "subscribed"
        await ws.until(lambda f: f.get("op") == "event" and f["seq"] >= 1)
        await db(lambda: bob.user_permissions.clear())()
        frames = await ws.until(lambda f: f.get("op") == "error", timeout=15)
        assert frames[-1] == {
            "op": "error",
            "code": "not_found",
            "message": f"no run {alices.pk} that you may see",
            "topic": f"run:{alices.pk}",
        }
        await still_open(ws)
        assert (await ws.subscribe(f"run:{alices.pk}"))["code"] == "not_found"
    finally:
        await ws.close()
