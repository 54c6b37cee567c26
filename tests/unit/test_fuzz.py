"""Property-based fuzzing (Hypothesis): random JSON (deep, huge, odd numbers, unicode, NUL) into start, resume and
send-event through the Python API and the JSON API, and random frame sequences into the websocket consumer.

Invariants: every answer is a run, a documented exception (``WorkflowsError``) or a 4xx with a JSON error; rejected
input changes no row; the connection survives every bad frame. Examples are bounded and derandomised, so that the
suite stays fast and a failure reproduces.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.invariants import row_counts
from tests.testapp import flows
from tests.testapp import hardening_flows as hf
from tests.unit.test_consumer import WS, aio
from workflows import WorkflowsError
from workflows.models import Run
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")

FUZZ = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def nested(depth: int, leaf=None):
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()  # NaN and ±Infinity included
    | st.text()  # any unicode, NUL included
    | st.sampled_from(["\x00", "a\x00b", "²", "١٢٣", "\ud7ff", "\U0010ffff", "e\u0301", ""])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
odd_values = (
    json_values
    | st.builds(nested, st.integers(min_value=1, max_value=3000), scalars)
    | st.integers(min_value=900_000, max_value=1_100_000).map(lambda n: {"big": "x" * n})
    | st.just(10**5000)
)


def as_text(value) -> str:
    """JSON text for a value, NaN and Infinity as Python writes them; None when JSON text cannot hold it."""
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):
        return None


@pytest.fixture
def waiting(user):
    """A run waiting for resume data and events of any JSON."""
    run = hf.asking.start({"a": 1}, user=user)
    drain()
    return run


def _python_call(call, data) -> None:
    before = row_counts()
    try:
        call(data)
    except WorkflowsError:
        assert row_counts() == before  # rejected: nothing written
    else:
        assert row_counts() != before


def test_fuzz__python_api_start_resume_and_send_event(user, waiting):
    @FUZZ
    @given(data=odd_values, which=st.sampled_from(["anything", "loose", "counter", "resume", "event"]))
    def check(data, which):
        calls = {
            "anything": lambda d: hf.anything.start(d, user=user),
            "loose": lambda d: hf.loose.start(d, user=user),
            "counter": lambda d: flows.counter.start(d, user=user),
            "resume": lambda d: Run.objects.get(pk=waiting.pk).resume(data=d),
            "event": lambda d: Run.objects.get(pk=waiting.pk).send_event("go", d),
        }
        _python_call(calls[which], data)

    check()


def _api_answer_is_sane(response, before) -> None:
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.status_code >= 400:
        assert 400 <= response.status_code < 500 and isinstance(body["error"], str), body
        assert row_counts() == before


def test_fuzz__json_api_start_resume_and_send_event(client, user, waiting):
    client.force_login(user)

    @FUZZ
    @given(
        data=odd_values,
        url=st.sampled_from(
            [
                "/api/workflows/anything/runs/",
                "/api/workflows/loose/runs/",
                "/api/workflows/counter/runs/",
                f"/api/runs/{waiting.pk}/resume/",
                f"/api/runs/{waiting.pk}/send-event/",
            ]
        ),
        key=st.none() | st.text(max_size=300),
        garble=st.sampled_from([None, "truncate", "nan", "deep"]),
    )
    def check(data, url, key, garble):
        body = {"input": data} if "/workflows/" in url else {"data": data, "name": "go"}
        if key is not None and "/workflows/" in url:
            body["idempotency_key"] = key
        text = as_text(body)
        if text is None or garble == "deep":
            text = '{"input": ' + "[" * 50_000 + "]" * 50_000 + "}"
        elif garble == "truncate":
            text = text[: len(text) // 2]
        elif garble == "nan":
            text = text.replace("null", "NaN", 1)
        before = row_counts()
        _api_answer_is_sane(client.post(url, text, content_type="application/json"), before)

    check()


frames = st.one_of(
    st.fixed_dictionaries(
        {
            "op": st.sampled_from(["subscribe", "unsubscribe", "ack", "ping"]) | st.text(max_size=10),
            "topic": st.sampled_from(["runs", "run:1", "workflow:counter", "runs\n", "run:0"]) | st.text(max_size=20),
        },
        optional={"since": json_values, "n": json_values, "id": json_values},
    ).map(as_text),
    json_values.map(as_text),
    st.text(max_size=50),
    st.builds(lambda d: '{"op": "ping", "id": ' + "[" * d + "]" * d + "}", st.integers(min_value=60, max_value=40_000)),
)


def test_fuzz__random_frames_never_close_the_connection(user):
    @FUZZ
    @given(sequence=st.lists(frames.filter(bool), min_size=1, max_size=8))
    @aio
    async def check(sequence):
        ws = await WS.open(user)
        try:
            for text in sequence:
                await ws.comm.send_to(text_data=text)
            await ws.send(op="ping", id="alive")
            await ws.until(lambda f: f == {"op": "pong", "id": "alive"})  # every frame before it was answered
        finally:
            await ws.close()

    check()


@pytest.mark.parametrize("flow_name", ["anything"])
def test_fuzz__unicode_round_trips_through_the_api(client, user, flow_name):
    client.force_login(user)

    @FUZZ
    @given(text=st.text().filter(lambda t: "\x00" not in t))
    def check(text):
        response = client.post(f"/api/workflows/{flow_name}/runs/", json.dumps({"input": text}), "application/json")
        assert response.status_code == 201 and Run.objects.get(pk=response.json()["id"]).input == text

    check()
