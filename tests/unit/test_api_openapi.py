"""The API's OpenAPI document and docs (login or token only), and the one error shape of the API and the
dashboard's scripts."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from tests.testapp import flows
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")


def test_openapi__document_and_docs_need_a_login(client, user):
    for url in ("/api/openapi.json", "/api/docs"):
        refused = client.get(url)
        assert refused.status_code == 401 and "log in" in refused.json()["error"]
    client.force_login(user)
    doc = client.get("/api/openapi.json").json()
    validate(doc)  # a valid OpenAPI 3.1 document
    assert "/api/runs/{run_id}/steps/{path}/" in doc["paths"]
    assert set(doc["components"]["securitySchemes"]) == {"TokenAuth", "SessionAuth"}
    start = doc["paths"]["/api/workflows/{name}/runs/"]["post"]
    assert {"201", "200", "400", "404"} <= set(start["responses"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"/static/ninja/swagger-ui-bundle.js" in docs.content  # no CDN


def test_openapi__rate_limited_operations_document_429_with_retry_after_and_the_ported_routes(client, user):
    client.force_login(user)
    paths = client.get("/api/openapi.json").json()["paths"]
    limited = [
        ("/api/workflows/{name}/runs/", "post"),
        ("/api/runs/{run_id}/retry/", "post"),
        ("/api/runs/{run_id}/restart/", "post"),
        ("/api/runs/{run_id}/resume/", "post"),
        ("/api/runs/{run_id}/send-event/", "post"),
    ]
    for path, method in limited:
        answer = paths[path][method]["responses"]["429"]
        assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer", path
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut"), path
    assert "429" not in paths["/api/runs/{run_id}/cancel/"]["post"]["responses"]
    assert "202" in paths["/api/workflows/{name}/runs/"]["post"]["responses"]  # debounced starts
    assert {"get", "post"} <= set(paths["/api/workflows/{name}/schedules/"])
    assert {"get", "patch", "delete"} <= set(paths["/api/schedules/{schedule_id}/"])
    assert "/api/schedules/{schedule_id}/pause/" in paths and "/api/runs/{run_id}/values/{where}" in paths


def test_openapi__index_points_to_the_document(client, user):
    client.force_login(user)
    index = client.get("/api/").json()
    assert index == {
        "workflows": "/api/workflows/",
        "runs": "/api/runs/",
        "openapi": "/api/openapi.json",
        "docs": "/api/docs",
        "live": "/ws/",
    }


def test_errors__wrong_methods_answer_json_405_and_anonymous_401(client, user):
    assert client.delete("/api/runs/").status_code == 401
    client.force_login(user)
    wrong = client.delete("/api/runs/")
    assert wrong.status_code == 405 and wrong["Allow"] == "GET" and "not allowed" in wrong.json()["error"]


def test_errors__the_dashboard_scripts_get_the_api_error_shape(client, user):
    client.force_login(user)
    run = flows.counter.start({"value": 1}, user=user)
    drain()
    page = client.post(f"/runs/{run.pk}/cancel/", HTTP_ACCEPT="application/json")
    api = client.post(f"/api/runs/{run.pk}/cancel/")
    assert page.status_code == api.status_code == 409
    assert page.json()["error"] == api.json()["error"] and "already" in api.json()["error"]
    invalid = client.post("/workflows/trip-planner/", {"input.city": ""}, HTTP_ACCEPT="application/json")
    assert invalid.status_code == 400 and invalid.json()["error"] and invalid.json()["errors"]


def test_openapi__head_is_get_without_a_body(client, user):
    client.force_login(user)
    head = client.head("/api/runs/")
    assert head.status_code == 200 and head.content == b""


def test_openapi__under_a_prefix_the_document_has_the_prefixed_paths(client, user, settings):
    settings.ROOT_URLCONF = "tests.prefixed_urls"
    client.force_login(user)
    assert client.get("/api/openapi.json").status_code == 404
    doc = client.get("/wf/api/openapi.json").json()
    assert "/wf/api/runs/{run_id}/" in doc["paths"] and client.get("/wf/api/docs").status_code == 200
    assert client.get("/wf/api/").json()["live"] == "/wf/ws/"
