"""Schemathesis generates requests from the API's own OpenAPI document and sends them to the whole Django app
(middleware, auth, ninja, the engine, the test database), with a token: no answer is a 5xx, and every answer's
status, content type and body match what the document declares. Bounded: a fixed number of examples per
operation, no deadline (the box may be loaded)."""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows.store import tokens
from workflows.testing import drain

pytestmark = pytest.mark.usefixtures("engine_db")
EXAMPLES = 30  # per operation
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token(user):
    for value in (1, 2):  # runs to find: a succeeded one with steps and logs, and a suspended one
        flows.chatty_flow.start({"value": value}, user=user)
    cf.reviewed.start({"value": 1}, user=user)
    drain()
    return tokens.create(user, "schemathesis")[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api__every_answer_matches_the_document(token):
    seen = walk(token)
    statuses = {status for _, status in seen}
    assert {200, 400, 404} <= statuses, seen  # it reached the endpoints, not only their refusals


def test_api__schedules_changed_by_staff_match_the_document(django_user_model):
    """The schedules' writes as someone allowed to make them (a plain user mostly gets 403s)."""
    from workflows.engine import schedule_admin

    ops = django_user_model.objects.create_user("ops", password="pw-ops-123456", is_staff=True)
    ids = [schedule_admin.create("counter", {"cron": f"{n} 3 * * *", "input": {"value": n}}).pk for n in range(20)]
    count = itertools.count()

    def aim(case):  # most cases at a real workflow and schedule (generated ones are never found), some valid
        n = next(count)
        if n % 4:
            real = {"name": "counter", "schedule_id": ids[n % len(ids)]}
            case.path_parameters = {k: real.get(k, v) for k, v in (case.path_parameters or {}).items()}
        if n % 3 == 0 and case.operation.method.upper() == "POST" and case.operation.path.endswith("/schedules/"):
            case.body = {"cron": "5 4 * * *", "input": {"value": n}, "name": f"made-{n}"}

    seen = walk(tokens.create(ops, "schemathesis")[1], only="schedules", aim=aim)
    assert {200, 201, 204, 400, 404} <= {status for _, status in seen}, seen


def walk(token: str, only: str = "", aim=lambda case: None) -> set[tuple[str, int]]:
    """Every operation (whose path holds ``only``), each with its own bounded hypothesis run (``aim`` may change a
    case first): the labels and statuses seen. (schemathesis.pytest.from_fixture does not run under pytest 9: it
    reads a private node attribute.)"""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application(), headers=bearer(token))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    operations = [op for op in operations if only in op.path]

    seen: set[tuple[str, int]] = set()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same examples every run: a failure reproduces
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case):
            aim(case)
            response = case.call_and_validate(headers=bearer(token), checks=CHECKS)
            seen.add((case.operation.label, response.status_code))

        check()
    return seen
