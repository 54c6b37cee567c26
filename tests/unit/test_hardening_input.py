"""Bad input gets a clear error and changes nothing: deep, huge, non-finite or NUL-holding JSON, through the Python
API, the JSON API and the dashboard's forms (the websocket's frames: ``test_hardening_live``)."""

from __future__ import annotations

import json

import pytest

from tests.invariants import row_counts
from tests.testapp import hardening_flows as hf
from workflows import InvalidInput
from workflows.models import Run
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")

DEEP_TEXT = "[" * 100_000 + "]" * 100_000


def nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def post_json(client, url: str, text: str):
    return client.post(url, text, content_type="application/json")


@pytest.fixture
def suspended(user):
    run = hf.asking.start({"a": 1}, user=user)
    drain()
    run.refresh_from_db()
    assert run.status == "suspended"
    return run


# --- 1. depth and size ----------------------------------------------------------------------------------------


def test_limits__json_100000_levels_deep_is_400_on_every_api_endpoint_and_changes_nothing(api, suspended):
    before = row_counts()
    for url in (
        "/api/workflows/anything/runs/",
        f"/api/runs/{suspended.pk}/resume/",
        f"/api/runs/{suspended.pk}/send-event/",
        f"/api/runs/{suspended.pk}/restart/",
    ):
        response = post_json(api, url, '{"input": ' + DEEP_TEXT + "}")
        assert response.status_code == 400, (url, response.content[:200])
        assert "Nested deeper than" in response.json()["error"]
    assert row_counts() == before


def test_limits__any_input_deeper_than_max_json_depth_is_invalid_input_not_a_serializer_error(api, settings):
    for depth in (65, 900, 5000):  # 900: pydantic's "Maximum serialization depth exceeded" before the fix
        with pytest.raises(InvalidInput, match="Nested deeper than 64 levels"):
            hf.anything.start(nested(depth))
        response = post_json(api, "/api/workflows/anything/runs/", '{"input": ' + "[" * depth + "]" * depth + "}")
        assert response.status_code == 400 and response.json()["errors"][0]["type"] == "too_deep"
    assert Run.objects.count() == 0
    assert hf.anything.start(nested(64)).pk  # the limit itself is accepted
    settings.WORKFLOWS = {**settings.WORKFLOWS, "MAX_JSON_DEPTH": 3}
    with pytest.raises(InvalidInput, match="deeper than 3"):
        hf.anything.start(nested(4))


def test_limits__resume_and_events_bound_depth_in_the_python_api_too(suspended):
    before = row_counts()
    with pytest.raises(InvalidInput, match="Nested deeper"):
        suspended.resume(data=nested(900))
    with pytest.raises(InvalidInput, match="Nested deeper"):
        suspended.send_event("go", nested(900))
    assert row_counts() == before


def test_limits__input_over_max_input_bytes_is_rejected(api, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "MAX_INPUT_BYTES": 1000}
    with pytest.raises(InvalidInput, match="at most 1000"):
        hf.anything.start({"text": "x" * 2000})
    response = post_json(api, "/api/workflows/anything/runs/", json.dumps({"input": {"text": "x" * 2000}}))
    assert response.status_code == 413 and "at most 1000 bytes" in response.json()["error"]
    assert Run.objects.count() == 0


def test_limits__a_deep_json_text_area_is_a_form_error_not_a_500(api):
    response = api.post("/workflows/anything/", {"input": DEEP_TEXT})
    assert response.status_code == 400 and b"Nested deeper than 64 levels" in response.content
    response = api.post("/workflows/anything/", {"input": DEEP_TEXT}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and "Nested deeper" in response.json()["errors"][0]["msg"]
    assert Run.objects.count() == 0


# --- 4. NaN and Infinity --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}', '{"x": 1e999}'])
def test_limits__non_finite_numbers_in_api_bodies_are_400(api, text):
    for url in ("/api/workflows/anything/runs/", "/api/workflows/loose/runs/"):
        response = post_json(api, url, '{"input": ' + text + "}")
        assert response.status_code == 400, response.content
    assert Run.objects.count() == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_limits__non_finite_numbers_are_invalid_input_never_stored_as_null(value):
    with pytest.raises(InvalidInput, match="finite"):
        hf.anything.start({"x": value})
    with pytest.raises(InvalidInput, match="finite"):
        hf.loose.start({"extra": [value]})  # an Any field: pydantic would have stored null
    with pytest.raises(InvalidInput, match="finite"):
        hf.loose.start({"x": str(value)})  # "nan" parsed into a float field
    assert Run.objects.count() == 0


def test_limits__nan_in_a_form_number_field_is_a_form_error(api):
    response = api.post("/workflows/loose/", {"input.x": "nan", "input.extra": "1"})
    assert response.status_code == 400 and b"finite" in response.content
    assert Run.objects.count() == 0


def test_limits__non_finite_resume_data_and_events_are_rejected(suspended, api):
    before = row_counts()
    with pytest.raises(InvalidInput, match="finite"):
        suspended.resume(data={"v": float("nan")})
    with pytest.raises(InvalidInput, match="finite"):
        suspended.send_event("go", [float("inf")])
    assert post_json(api, f"/api/runs/{suspended.pk}/resume/", '{"data": NaN}').status_code == 400
    assert row_counts() == before


# --- 5. NUL characters ----------------------------------------------------------------------------------------


def test_nul__in_input_keys_and_idempotency_keys_is_rejected_before_the_database(api, suspended):
    before = row_counts()
    for bad in ({"a": "x\x00y"}, {"a\x00": 1}, ["\x00"]):
        with pytest.raises(InvalidInput, match="NUL"):
            hf.anything.start(bad)
        response = post_json(api, "/api/workflows/anything/runs/", json.dumps({"input": bad}))
        assert response.status_code == 400 and response.json()["errors"][0]["type"] == "string_nul"
    with pytest.raises(InvalidInput, match="NUL"):
        hf.anything.start(1, idempotency_key="k\x00")
    response = post_json(api, "/api/workflows/anything/runs/", json.dumps({"input": 1, "idempotency_key": "k\x00"}))
    assert response.status_code == 400
    with pytest.raises(InvalidInput, match="NUL"):
        suspended.resume(data="\x00")
    assert post_json(api, f"/api/runs/{suspended.pk}/send-event/", json.dumps({"name": "go\x00"})).status_code == 400
    response = api.post("/workflows/anything/", {"input": '"a\\u0000b"', "idempotency_key": "x\x00"})
    assert response.status_code == 400
    assert row_counts() == before


def test_nul__in_filters_and_urls_is_400_or_404_not_a_database_error(api, suspended):
    for params in ({"q": "a\x00b"}, {"workflow": "anything\x00"}):
        response = api.get("/api/runs/", params)
        assert response.status_code == 400 and "NUL" in response.json()["error"]
        page = api.get("/runs/", params)
        assert page.status_code == 200 and b"NUL" in page.content
    assert api.get("/workflows/any%00thing/").status_code == 404
    assert api.get("/api/workflows/any%00thing/").status_code == 404
    assert api.get("/api/workflows/any%00thing/runs/").status_code == 404
    assert post_json(api, "/api/workflows/any%00thing/runs/", '{"input": 1}').status_code == 404
    assert api.get(f"/api/runs/{suspended.pk}/steps/a%00b/").status_code == 404
