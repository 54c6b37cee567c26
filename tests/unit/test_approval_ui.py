"""The run page's approval of an agent's tool call (workflows/web/approvals.py): the tool and its arguments,
Approve, Deny with a reason, Edit arguments in a form from the tool's schema (the support-desk demo)."""

from __future__ import annotations

import pytest

from examples import support_desk as desk
from workflows.models import StepRun

from .test_engine import finished

pytestmark = pytest.mark.usefixtures("engine_db")
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def suspended(client, user):
    client.force_login(user)
    run = finished(desk.support_desk.start({}, user=user))
    assert run.status == "suspended", run.error
    return run


def resume(client, run, **fields):
    return client.post(f"/runs/{run.pk}/resume/", {"step": "answer", **fields}, **JSON)


def test_approval__the_page_shows_the_tool_its_arguments_and_the_three_decisions(client, suspended):
    html = client.get(f"/runs/{suspended.pk}/").content.decode()
    assert 'data-approval="propose_refund"' in html
    assert "<dt>amount</dt>" in html and "249.0" in html and "A-1001" in html
    for action in ("approve", "deny", "approve-edited"):
        assert f'data-action="{action}"' in html
    assert 'name="args.amount"' in html and 'name="args.order_id"' in html  # the tool's schema, as a form
    fragment = client.get(f"/runs/{suspended.pk}/?fragment=actions").content.decode()
    assert 'data-approval="propose_refund"' in fragment


def test_approval__approve_runs_the_tool_with_the_proposed_arguments(client, suspended):
    assert resume(client, suspended, decision="approve").status_code == 200
    run = finished(suspended)
    assert run.status == "succeeded" and "A refund of 249.00 EUR for order A-1001" in run.output


def test_approval__deny_gives_the_model_the_reason(client, suspended):
    assert resume(client, suspended, decision="deny", reason="not damaged by us").status_code == 200
    run = finished(suspended)
    assert run.status == "succeeded", run.error
    assert "denied by a person: not damaged by us" in run.output
    assert StepRun.objects.get(run=run, path="answer/tool:propose_refund#1").output["denied"] is True


def test_approval__edited_arguments_are_checked_against_the_tool_schema(client, suspended):
    args = {"args.order_id": "A-1001", "args.reason": "damaged"}
    bad = resume(client, suspended, decision="edit", **args, **{"args.amount": "lots"})
    assert bad.status_code == 400
    assert any(e["field"] == "args.amount" for e in bad.json()["errors"]), bad.json()
    missing = resume(client, suspended, decision="edit", **{"args.amount": "10"})
    assert missing.status_code == 400  # the tool's schema requires order_id and reason: nothing changes
    suspended.refresh_from_db()
    assert suspended.status == "suspended"

    assert resume(client, suspended, decision="edit", **args, **{"args.amount": "200"}).status_code == 200
    run = finished(suspended)
    assert run.status == "succeeded" and "A refund of 200.00 EUR" in run.output
    call = StepRun.objects.get(run=run, path="answer/tool:propose_refund#1")
    assert call.input["args"]["amount"] == 200 and call.input["edited_args"] is True
