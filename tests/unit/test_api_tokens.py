"""Personal API tokens: created on the dashboard (shown once, stored hashed), ``Authorization: Bearer`` on the API
(owner's permissions, no CSRF) and the websocket, expiry, revocation by the owner and by staff."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from tests.testapp import flows
from tests.unit.test_consumer import aio, db
from workflows.models import ApiToken, Run
from workflows.store import tokens

pytestmark = pytest.mark.usefixtures("engine_db")


def bearer(secret: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_dashboard__a_token_is_shown_once_and_stored_hashed(client, user):
    client.force_login(user)
    page = client.post("/tokens/", {"name": "CI deploys", "expires_in_days": "30"})
    assert page.status_code == 200
    secret = re.search(rb'value="(wft_[^"]+)"', page.content).group(1).decode()
    token = ApiToken.objects.get(user=user)
    assert token.name == "CI deploys" and token.digest == tokens.digest(secret) and secret not in token.digest
    assert secret.startswith(token.prefix) and token.expires_at > timezone.now() + dt.timedelta(days=29)
    listed = client.get("/tokens/")
    assert b"CI deploys" in listed.content and secret.encode() not in listed.content  # never shown again
    assert client.post("/tokens/", {"name": "", "expires_in_days": "0"}).status_code == 400
    assert client.post("/tokens/", {"name": "x", "expires_in_days": "²"}).status_code == 400
    assert ApiToken.objects.count() == 1


def test_api__a_token_acts_as_its_owner_without_csrf(user, bob):
    _, secret = tokens.create(user, "script")
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF cookie
    started = client.post(
        "/api/workflows/counter/runs/", json.dumps({"input": {"value": 1}}), content_type="application/json",
        **bearer(secret),
    )  # fmt: skip
    assert started.status_code == 201 and Run.objects.get(pk=started.json()["id"]).created_by == user
    bobs = flows.counter.start({"value": 1}, user=bob)
    assert client.get(f"/api/runs/{bobs.pk}/", **bearer(secret)).status_code == 404  # the owner's permissions
    assert client.get("/api/runs/", **bearer(secret)).json()["count"] == 1
    assert client.get("/api/openapi.json", **bearer(secret)).status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize("case", ["wrong", "expired", "revoked", "inactive"])
def test_api__a_bad_token_is_401_even_with_a_session(client, user, case):
    token, secret = tokens.create(
        user, "t", expires_at=timezone.now() - dt.timedelta(seconds=1) if case == "expired" else None
    )
    if case == "wrong":
        secret += "x"
    elif case == "revoked":
        assert tokens.revoke(user, token.pk)
    elif case == "inactive":
        user.is_active = False
        user.save()
    client.force_login(user)  # a bad token is refused, not silently replaced by the session
    for url in ("/api/runs/", "/api/openapi.json"):
        response = client.get(url, **bearer(secret))
        assert response.status_code == 401 and response.json()["error"]


def test_revoke__owners_revoke_their_own_and_staff_everyones(client, user, bob):
    alices, _ = tokens.create(user, "alice's")
    bobs, _ = tokens.create(bob, "bob's")
    client.force_login(user)
    assert b"bob&#x27;s" not in client.get("/tokens/").content
    client.post(f"/tokens/{bobs.pk}/revoke/")
    assert ApiToken.objects.filter(pk=bobs.pk).exists()  # not hers
    client.post(f"/tokens/{alices.pk}/revoke/")
    assert not ApiToken.objects.filter(pk=alices.pk).exists()
    user.is_staff = True
    user.save()
    assert b"bob&#x27;s" in client.get("/tokens/").content
    client.post(f"/tokens/{bobs.pk}/revoke/")
    assert not ApiToken.objects.exists()


def test_admin__staff_see_and_delete_tokens(client, admin_user, user):
    token, _ = tokens.create(user, "in the admin")
    client.force_login(admin_user)
    assert b"in the admin" in client.get("/admin/workflows/apitoken/").content
    client.post(f"/admin/workflows/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert not ApiToken.objects.exists()


@aio
async def test_websocket__a_token_opens_it_without_cookies_or_origin_and_a_bad_one_does_not(user):
    from project.asgi import application

    _, secret = await db(tokens.create)(user, "live")
    run = await db(flows.counter.start)({"value": 1}, user=user)

    async def connect(token: str) -> tuple[bool, WebsocketCommunicator]:
        headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {token}".encode())]
        comm = WebsocketCommunicator(application, "/ws/", headers=headers)
        return (await comm.connect(timeout=5))[0], comm

    ok, comm = await connect(secret)
    try:
        assert ok
        await comm.send_json_to({"op": "subscribe", "topic": f"run:{run.pk}"})
        assert (await comm.receive_json_from(5))["op"] == "subscribed"
    finally:
        await comm.disconnect()
    refused, comm = await connect(secret + "x")
    await comm.disconnect()
    assert not refused


@aio
async def test_websocket__revoking_the_token_closes_the_connection_at_the_next_sweep(user, settings):
    from project.asgi import application
    from workflows.live.authority import SESSION_ENDED

    settings.WORKFLOWS = {**settings.WORKFLOWS, "LIVE": {**settings.WORKFLOWS.get("LIVE", {}), "SWEEP_SECONDS": 0.2}}
    token, secret = await db(tokens.create)(user, "live")
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {secret}".encode())]
    comm = WebsocketCommunicator(application, "/ws/", headers=headers)
    assert (await comm.connect(timeout=5))[0]
    try:
        await comm.send_json_to({"op": "subscribe", "topic": "runs"})
        assert (await comm.receive_json_from(5))["op"] == "subscribed"
        assert (await comm.receive_json_from(5))["op"] == "snapshot"
        await asyncio.sleep(1)  # several sweeps: a valid token keeps the connection (it has no session)
        await comm.send_json_to({"op": "ping", "id": "alive"})
        assert await comm.receive_json_from(5) == {"op": "pong", "id": "alive"}
        await db(tokens.revoke)(user, token.pk)
        while (output := await comm.receive_output(15))["type"] != "websocket.close":
            pass
        assert output["code"] == SESSION_ENDED
    finally:
        await comm.disconnect()
