"""The hot path's prebuilt statements read and write exactly what the ORM would, on SQLite and PostgreSQL."""

import datetime as dt

import pytest
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from tests.testapp import flows
from workflows.models import Run, RunEvent, StepRun, StepStatus
from workflows.store import statements

pytestmark = pytest.mark.usefixtures("engine_db")


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_lock_run__reads_every_field_as_the_orm_does_and_the_workflow_loads_on_access(user):
    run = flows.counter.start({"value": 1}, user=user)
    Run.objects.filter(pk=run.pk).update(state={"a": [1, "x"]}, error={"type": "E"}, started_at=timezone.now())
    with transaction.atomic():
        locked = statements.lock_run(run.pk)
    expected = Run.objects.get(pk=run.pk)
    assert _fields(locked) == _fields(expected)
    assert locked.workflow.name == "counter"
    assert locked.workflow.graph == expected.workflow.graph  # deferred, read on access
    with pytest.raises(Run.DoesNotExist), transaction.atomic():
        statements.lock_run(run.pk + 1000)


def test_update_fields__writes_json_and_times_and_applies_only_where_the_row_still_matches(user):
    run = flows.counter.start({"value": 1}, user=user)
    sr = run.step("increment")
    before = Run.objects.get(pk=run.pk).updated_at
    sr.output, sr.finished_at, sr.status = {"nested": {"v": [1, 2.5, None]}}, timezone.now(), StepStatus.SUCCEEDED
    assert statements.update_fields(sr, ["output", "finished_at", "status"], where={"status": ("running",)}) == 0
    assert model_to_dict(StepRun.objects.get(pk=sr.pk))["output"] is None  # not running: nothing written
    changed = statements.update_fields(
        sr, ["output", "finished_at", "status"], where={"status": ("pending", "queued"), "attempt": sr.attempt}
    )
    assert changed == 1 and _fields(StepRun.objects.get(pk=sr.pk)) == _fields(sr)
    run.cursor = 7
    statements.update_fields(run, ["cursor", "updated_at"])
    after = Run.objects.get(pk=run.pk)
    assert after.cursor == 7 and after.updated_at > before  # auto_now is set, as by save()


def test_insert__creates_the_row_the_orm_reads_back_and_sets_its_id(user):
    run = flows.counter.start({"value": 1}, user=user)
    now = timezone.now()
    sr = StepRun(run=run, block=5, path="x", step_id="x", kind="step", pool="default", input={"k": "é"},
                 status=StepStatus.PENDING, due_at=now, created_at=now)  # fmt: skip
    statements.insert(sr)
    assert sr.pk and _fields(StepRun.objects.get(pk=sr.pk)) == _fields(sr)


def test_insert_events__any_number_of_events_in_as_few_statements_as_allowed(user):
    run = flows.counter.start({"value": 1}, user=user)
    base = Run.objects.get(pk=run.pk).last_seq
    at = timezone.now() - dt.timedelta(seconds=1)
    events = [RunEvent(run=run, seq=base + i, kind="step_log", step="s", data={"i": i}, at=at) for i in range(1, 401)]
    statements.insert_events(events)
    stored = list(RunEvent.objects.filter(run=run, seq__gt=base).order_by("seq").values_list("seq", "data", "at"))
    assert stored == [(e.seq, e.data, e.at) for e in events]
