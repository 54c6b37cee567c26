"""Live updates end to end: a real daphne, Redis, RQ worker, recovery loop and websocket client.

The run is steered by process control, not by timing: its worker is paused (SIGSTOP) while the test needs the
run to stand still, so that every phase the test claims happened did happen — events seen live, events
committed while daphne was dead (replayed after the reconnect), and events streamed live after it.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from django.db import connection

from tests.testapp import flows
from workflows.models import Run, RunEvent, StepRun

from .live_fixtures import LiveSocket, Stack, database_url, free_port, session_cookie, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(engine_db, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": os.environ["REDIS_URL"],
        "DATABASE_URL": database_url(connection),
        "PYTHONUNBUFFERED": "1",
    }
    s = Stack(env=env, log_dir=tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


def apply(state: dict, frame: dict) -> None:
    """The client's view of a run, from its events (what the dashboard does in live.js)."""
    kind, step, data = frame["kind"], frame["step"], frame["data"]
    if kind.startswith("run_") and kind not in ("run_created",):
        state["status"] = "running" if kind == "run_started" else kind[4:]
        if kind == "run_succeeded":
            state["output"] = data["output"]
    elif kind.startswith("step_") and step and kind[5:] in {"pending", "queued", "running", "succeeded", "failed"}:
        state["steps"][step] = kind[5:]


def test_live__every_seq_exactly_once_across_a_daphne_restart(stack, django_user_model):
    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    cookie = session_cookie(user)
    run = flows.wide.start({"value": 1}, user=user)  # 20 steps of 0.15 s through a pool of 3
    port = free_port()
    first_daphne = stack.daphne(port)

    # 1. connected before any work: the journal so far is replayed, then the run's steps stream live
    client = LiveSocket(port, cookie)
    client.send(op="subscribe", topic=f"run:{run.pk}", since=0, id="a")
    reply = client.recv()
    assert reply["op"] == "subscribed" and reply["since"] == 0
    frames = client.until(lambda f: f.get("seq") == reply["last_seq"])
    worker = stack.worker()
    stack.recovery()
    frames += client.until(counting(lambda f: f.get("kind") == "step_succeeded", 4))
    live_before = [f for f in frames if f["seq"] > reply["last_seq"]]

    # 2. daphne dies mid-run; the run goes on without it, then stands still (its worker paused)
    first_daphne.kill()
    client.close()
    last_seen = frames[-1]["seq"]
    wait_until(lambda: Run.objects.get(pk=run.pk).last_seq >= last_seen + 5, 30, what="events while daphne is down")
    worker.signal(signal.SIGSTOP)
    paused_at = Run.objects.get(pk=run.pk)
    assert paused_at.status == "running", "the run must still be going when daphne comes back"

    # 3. a new daphne; the client reconnects with since=<last seq seen>: the gap is replayed, nothing twice
    stack.daphne(port)
    client = wait_until(lambda: _try_connect(port, cookie), 30, 0.2, "a websocket to the new daphne")
    client.send(op="subscribe", topic=f"run:{run.pk}", since=last_seen, id="b")
    reply = client.recv()
    assert reply["op"] == "subscribed" and reply["since"] == last_seen and reply["last_seq"] >= last_seen + 5
    client.send(op="subscribe", topic="runs", id="list")
    after = client.until(lambda f: f.get("op") == "snapshot")

    # 4. the worker goes on; the rest streams live until the run succeeds (and the runs list says so)
    worker.signal(signal.SIGCONT)
    finished = counting(
        lambda f: (
            (f.get("op") == "event" and f["kind"] == "run_succeeded")
            or (f.get("op") == "run" and f["run"]["id"] == run.pk and f["run"]["status"] == "succeeded")
        ),
        2,
    )
    after += client.until(finished, timeout=60)
    client.close()

    run.refresh_from_db()
    events = [f for f in frames + after if f.get("op") == "event"]
    counts = Counter(f["seq"] for f in events)
    assert [seq for seq, n in counts.items() if n > 1] == []  # nothing twice
    assert sorted(counts) == list(range(1, run.last_seq + 1))  # nothing missed
    assert [f["seq"] for f in events] == sorted(counts)  # and in order
    assert all(f["topic"] == f"run:{run.pk}" for f in events)
    journal = list(RunEvent.objects.filter(run=run).order_by("seq").values_list("seq", "kind", "step"))
    assert [(f["seq"], f["kind"], f["step"]) for f in events] == journal

    # every phase happened: live before the kill, replayed after it, live after the reconnect
    replayed = [f for f in after if f.get("op") == "event" and f["seq"] <= paused_at.last_seq]
    assert live_before and len(replayed) >= 5 and any(f["seq"] > paused_at.last_seq for f in events)

    # the client's final state is the true one
    state: dict = {"status": None, "steps": {}, "output": None}
    for f in events:
        apply(state, f)
    assert run.status == "succeeded" and state["status"] == "succeeded" and state["output"] == run.output
    latest = {sr.path: sr.status for sr in StepRun.objects.filter(run=run).order_by("block", "attempt")}
    assert state["steps"] == latest
    summary = next(f["run"] for f in reversed(after) if f.get("op") == "run" and f["run"]["id"] == run.pk)
    assert summary["seq"] == run.last_seq and summary["progress"] == 1.0


def counting(predicate, n: int):
    """A predicate that holds once ``predicate`` has held for ``n`` frames."""
    seen = []

    def check(frame):
        if predicate(frame):
            seen.append(frame)
        return len(seen) >= n

    return check


def _try_connect(port: int, cookie: str) -> LiveSocket | None:
    try:
        return LiveSocket(port, cookie, open_timeout=2)
    except Exception:  # refused or reset while daphne starts
        return None


def test_live__refuses_anonymous_and_foreign_origins_on_a_real_daphne(stack, django_user_model):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    cookie = session_cookie(user)
    port = free_port()
    stack.daphne(port)
    url = f"ws://127.0.0.1:{port}/ws/"
    for origin, headers in [
        (f"http://127.0.0.1:{port}", {}),  # anonymous
        ("https://evil.example", {"Cookie": f"sessionid={cookie}"}),  # a foreign page with the user's cookie
    ]:
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=origin, additional_headers=headers, proxy=None, open_timeout=5)
        assert refused.value.response.status_code == 403
    client = LiveSocket(port, cookie)
    client.send(op="ping", id=1)
    assert client.recv() == {"op": "pong", "id": 1}
    client.close()
