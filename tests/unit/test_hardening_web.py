"""The dashboard and the JSON API under bad requests: out-of-range dates and cursors, odd digits in form field
names, idempotency keys of other users, oversized bodies and too many fields. None of them is a 500."""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from tests.testapp import flows
from workflows.models import Run

pytestmark = pytest.mark.usefixtures("engine_db")


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# --- 2. dates that overflow -----------------------------------------------------------------------------------

OVERFLOWING = [
    {"created_to": "9999-12-31"},
    {"created_from": "0001-01-01T00:00:00+05:00"},
    {"created_to": "9999-12-31T23:00:00-05:00"},
]


@pytest.mark.parametrize("params", OVERFLOWING)
def test_dates__out_of_range_filters_are_400_in_the_api_and_ignored_with_a_message_on_pages(alice, user, params):
    flows.counter.start({"value": 1}, user=user)
    for url in ("/api/runs/", "/api/workflows/counter/runs/"):
        response = alice.get(url, params)
        assert response.status_code == 400, response.content
        [error] = response.json()["errors"]
        assert error["loc"] == list(params) and "between years 1 and 9999" in error["msg"]
    for url in ("/runs/", "/workflows/counter/"):
        page = alice.get(url, params)
        assert page.status_code == 200 and b"between years 1 and 9999" in page.content
        assert f"/runs/{Run.objects.get().pk}/".encode() in page.content  # the filter is ignored


@pytest.mark.parametrize(
    "text", ["older|0001-01-01T00:00:00+05:00|1", "newer|9999-12-31T23:59:59-05:00|1", "older|2025-01-01T00:00Z|²"]
)
def test_dates__a_cursor_holding_an_overflowing_date_is_400_in_the_api_and_the_first_page_on_pages(alice, text):
    response = alice.get("/api/runs/", {"cursor": cursor(text)})
    assert response.status_code == 400 and "invalid cursor" in response.json()["error"]
    assert alice.get("/runs/", {"cursor": cursor(text)}).status_code == 200
    assert alice.get("/workflows/counter/", {"cursor": cursor(text)}).status_code == 200


def test_dates__non_ascii_digits_in_integer_parameters_are_400(alice, user):
    run = flows.counter.start({"value": 1}, user=user)
    assert alice.get("/api/runs/", {"limit": "²"}).status_code == 400
    assert alice.get(f"/api/runs/{run.pk}/events/", {"after": "١"}).status_code == 400
    assert alice.get("/api/runs/", {"limit": "--5"}).status_code == 400


# --- 3. superscript digits in form field names ----------------------------------------------------------------


def test_forms__a_superscript_list_index_is_ignored_not_a_500(alice):
    fields = {"input.employee": "Ann", "input.amount": "12", "input.receipts.0": "r0", "input.receipts.²": "r"}
    response = alice.post("/workflows/expense-approval/", fields)
    assert response.status_code == 302
    assert Run.objects.get().input["receipts"] == ["r0"]  # "²" is no list index: that field is not read


# --- 6. idempotency keys are per user -------------------------------------------------------------------------


def test_idempotency__another_users_key_neither_blocks_nor_reveals(alice, user, bob):
    bobs = flows.counter.start({"value": 1}, user=bob, idempotency_key="order-42")
    response = alice.post(
        "/api/workflows/counter/runs/",
        json.dumps({"input": {"value": 2}, "idempotency_key": "order-42"}),
        content_type="application/json",
    )
    assert response.status_code == 201  # a new run of Alice's own: Bob's key is neither in the way nor revealed
    mine = Run.objects.get(pk=response.json()["id"])
    assert mine.pk != bobs.pk and mine.created_by == user and mine.input == {"value": 2}
    again = alice.post(
        "/api/workflows/counter/runs/",
        json.dumps({"input": {"value": 3}, "idempotency_key": "order-42"}),
        content_type="application/json",
    )
    assert again.status_code == 200 and again.json()["id"] == mine.pk  # her own key still returns her run
    page = alice.post("/workflows/counter/", {"input.value": "5", "idempotency_key": "order-42"})
    assert page.status_code == 409 and f'href="/runs/{mine.pk}/"' in page.content.decode()  # her run, linked
    assert flows.counter.start({"value": 1}, user=bob, idempotency_key="order-42").pk == bobs.pk


def test_idempotency__starts_without_a_user_share_their_keys(user):
    first = flows.counter.start({"value": 1}, idempotency_key="nightly")
    assert flows.counter.start({"value": 9}, idempotency_key="nightly").pk == first.pk
    assert flows.counter.start({"value": 1}, user=user, idempotency_key="nightly").pk != first.pk


# --- 7. bodies too large, too many fields ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [3 * 2**20, 50 * 2**20])
def test_oversized__api_bodies_answer_json_413(alice, size):
    body = '{"input": "' + "x" * size + '"}'
    response = alice.post("/api/workflows/anything/runs/", body, content_type="application/json")
    assert response.status_code == 413 and "too large" in response.json()["error"]
    assert Run.objects.count() == 0


def test_oversized__too_many_form_fields_answer_a_page_and_json_for_scripts_and_the_api(alice, user):
    fields = {f"input.f{i}": "x" for i in range(1500)}
    page = alice.post("/workflows/counter/", fields)
    assert page.status_code == 400 and b"too many fields" in page.content and b"<html" in page.content
    scripted = alice.post("/workflows/counter/", fields, HTTP_ACCEPT="application/json")
    assert scripted.status_code == 400 and "too many fields" in scripted.json()["message"]
    api = alice.post("/api/workflows/counter/runs/", fields)
    assert api.status_code == 400 and "JSON" in api.json()["error"]
    strict = Client(enforce_csrf_checks=True)  # the API's CSRF check reads the form: Django refuses it
    strict.force_login(user)
    strict.get("/accounts/login/")  # a csrftoken cookie: the check then reads the posted form
    api = strict.post("/api/workflows/counter/runs/", fields)
    assert api.status_code == 400 and "exceeded" in api.json()["error"]
    assert Run.objects.count() == 0


def test_oversized__a_form_over_the_upload_limit_is_a_413_page(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    page = alice.post("/workflows/anything/", {"input": '"' + "x" * 20_000 + '"'})
    assert page.status_code == 413 and b"too large" in page.content
    assert Run.objects.count() == 0
