"""The run page's event history (issue 19): the history endpoint, who acted, ctx.log levels and fields, labels
for made-up node ids, reused steps, a one-boolean resume as buttons, and a form from a workflow's first step."""

from __future__ import annotations

import pytest

from examples import flows as examples
from tests.testapp import control_flows as cf
from tests.testapp import flows
from tests.testapp import history_flows as hf
from workflows.models import Run, RunEvent, RunStatus
from workflows.testing import drain
from workflows.web import drawing
from workflows.web.forms import SchemaForm

pytestmark = pytest.mark.usefixtures("engine_db")
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def alice(client, user):
    client.force_login(user)
    return client


def kinds(run: Run) -> list[str]:
    return list(RunEvent.objects.filter(run=run).order_by("seq").values_list("kind", flat=True))


def test_history__every_event_in_order_a_page_at_a_time_with_times_from_the_start(alice, user):
    run = flows.chain5.start({"value": 1}, user=user)
    drain()
    run.refresh_from_db()
    body = alice.get(f"/runs/{run.pk}/history/").json()
    events = body["events"]
    assert [e["seq"] for e in events] == list(range(1, run.last_seq + 1)) and not body["earlier"]
    assert [e["kind"] for e in events] == kinds(run)
    assert events[0]["kind"] == "run_created" and events[0]["by"] == "alice" and events[0]["t"] >= 0
    assert all(b["t"] >= a["t"] for a, b in zip(events, events[1:], strict=False))
    page = alice.get(f"/runs/{run.pk}/history/?limit=5").json()  # the newest five, in order
    assert [e["seq"] for e in page["events"]] == list(range(run.last_seq - 4, run.last_seq + 1)) and page["earlier"]
    older = alice.get(f"/runs/{run.pk}/history/?limit=5&before={page['events'][0]['seq']}").json()
    assert older["events"][-1]["seq"] == page["events"][0]["seq"] - 1
    only = alice.get(f"/runs/{run.pk}/history/?kind=step_succeeded&step=increment").json()["events"]
    assert only and {(e["kind"], e["step"]) for e in only} == {("step_succeeded", "increment")}


def test_history__permissions_and_bad_parameters(client, alice, user, django_user_model):
    run = flows.counter.start({"value": 1}, user=user)
    for bad in ("limit=0", "limit=1001", "before=x", "before=-3", "kind=%00"):
        response = alice.get(f"/runs/{run.pk}/history/?{bad}")
        assert response.status_code == 400 and "error" in response.json(), bad
    assert alice.post(f"/runs/{run.pk}/history/").status_code == 405  # not an action
    assert alice.get(f"/runs/{run.pk + 99}/history/").status_code == 404
    client.logout()
    assert client.get(f"/runs/{run.pk}/history/").status_code == 302  # login first
    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    client.force_login(bob)
    assert client.get(f"/runs/{run.pk}/history/").status_code == 404  # a run Bob may not see


def _data(run: Run, kind: str) -> dict:
    return RunEvent.objects.filter(run=run, kind=kind).order_by("-seq").values_list("data", flat=True).first()


def test_actors__cancel_resume_event_and_retry_record_who_acted(alice, user):
    claim = examples.expense_approval.start({"employee": "Ann", "amount": 50}, user=user)
    drain()
    posted = alice.post(f"/runs/{claim.pk}/resume/", {"data.approved": "false", "data.comment": "no"}, **JSON)
    assert posted.json()["ok"]
    assert _data(claim, "step_resumed")["by"] == "alice" and _data(claim, "step_resumed")["data"]["approved"] is False
    waiting = cf.approval.start({"value": 1}, user=user)
    drain()
    sent = {"name": "approved", "data.approved": "true", "data.by": "Zoe"}
    assert alice.post(f"/runs/{waiting.pk}/send-event/", sent, **JSON).json()["ok"]
    assert _data(waiting, "event_received")["by"] == "alice"
    long = cf.long_nap.start({"value": 1}, user=user)
    drain(timeout=1)
    assert alice.post(f"/runs/{long.pk}/cancel/", **JSON).json()["ok"]
    assert _data(long, "run_canceled")["by"] == "alice"
    again = alice.post(f"/runs/{long.pk}/retry/", **JSON).json()
    retried = Run.objects.get(pk=again["redirect"].rstrip("/").rsplit("/", 1)[1])
    assert _data(retried, "run_created")["by"] == "alice" and _data(retried, "run_created")["restarted_from"] == long.pk
    history = alice.get(f"/runs/{long.pk}/history/?kind=run_canceled").json()["events"]
    assert history[0]["by"] == "alice"


def test_actors__from_code_nothing_is_invented(user):
    run = cf.long_nap.start({"value": 1}, user=user)
    drain(timeout=1)
    run.cancel()
    assert "by" not in _data(run, "run_canceled")


def test_log__levels_and_fields_are_stored_and_a_bad_level_fails_the_step(alice, user):
    run = hf.noisy_flow.start({"x": 1}, user=user)
    drain()
    logs = [e["data"] for e in alice.get(f"/runs/{run.pk}/history/?kind=step_log").json()["events"]]
    assert [(d["message"], d.get("level", "info")) for d in logs] == [
        ("starting", "info"),
        ("slow source", "warning"),
        ("details", "debug"),
    ]
    assert logs[0]["rows"] == 3 and logs[1]["source"] == "api" and logs[1]["seconds"] == 2.5
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


def test_log__an_unknown_level_is_refused(monkeypatch):
    from workflows.definition.context import StepContext

    ctx = StepContext.__new__(StepContext)
    with pytest.raises(ValueError, match="level must be one of"):
        StepContext.log(ctx, "x", level="loud")


def test_run_page__reused_steps_are_marked_and_made_up_ids_get_labels(alice, user):
    run = hf.untyped_plan.start({"city": "Lima"}, user=user)
    drain()
    again = Run.objects.get(pk=run.pk).restart("sleep2")
    html = alice.get(f"/runs/{again.pk}/").content.decode()
    assert '"labels": {"sleep2": "sleep 0.1 s"}' in html and "sleep 0.1 s" in html
    assert f'"restarted_from": {run.pk}' in html and '"reused": true' in html
    assert f'"history": "/runs/{again.pk}/history/"' in html and 'id="connection-banner"' in html
    assert drawing.display_label("sleep2", {"kind": "sleep", "index": 1, "source": "5"}) == "sleep 5 s"
    assert drawing.display_label("sleep2", {"kind": "step", "index": 1}) == "sleep2"  # a step of that name
    assert drawing.display_label("nap", {"kind": "sleep", "index": 1, "source": "5"}) == "nap"  # the author's id


def test_forms__one_required_boolean_is_two_buttons_never_a_checkbox(alice, user):
    claim = examples.expense_approval.start({"employee": "Ann", "amount": 50}, user=user)
    drain()
    actions = alice.get(f"/runs/{claim.pk}/?fragment=actions").content.decode()
    assert 'name="data.approved" value="true"' in actions and 'name="data.approved" value="false"' in actions
    assert "✓ Approve" in actions and "✗ Reject" in actions and 'name="data.comment"' in actions
    assert 'type="checkbox" id="resume1-data-approved"' not in actions and 'type="checkbox"' not in actions
    assert SchemaForm({"type": "boolean"}, prefix="data").choice is not None
    unanswered = alice.post(f"/runs/{claim.pk}/resume/", {"data.comment": "?"}, **JSON)  # neither button's value
    assert unanswered.status_code == 400 and unanswered.json()["errors"][0]["field"] == "data.approved"
    assert Run.objects.get(pk=claim.pk).status == RunStatus.SUSPENDED
    two = {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"}}, "required": ["a", "b"]}
    assert SchemaForm(two).choice is None  # several yes/no questions: checkboxes
    optional = {"type": "object", "properties": {"urgent": {"type": "boolean", "default": False}}}
    assert SchemaForm(optional).choice is None  # a default, not a decision


def test_forms__a_workflow_without_input_gets_its_first_steps_form(alice, user):
    html = alice.get("/workflows/history-untyped/").content.decode()
    assert 'name="input.city"' in html and 'name="input.days"' in html
    response = alice.post("/workflows/history-untyped/", {"input.city": "Lima", "input.days": "3"})
    assert response.status_code == 302
    assert Run.objects.get().input == {"city": "Lima", "days": 3}
    api = alice.get("/api/workflows/history-untyped/")
    assert api.status_code == 200 and api.json().get("input_schema") in (None, {})  # the API says what it accepts
