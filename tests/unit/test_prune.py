from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.testapp import control_flows as cf
from tests.testapp import flows
from workflows.models import Run, RunEvent, StepRun

from .test_engine import finished


def test_prune__deletes_old_finished_runs_with_children_steps_and_events(engine_db):
    old = finished(cf.parent.start({"value": 1}))  # with a child and a grandchild run
    recent = finished(flows.counter.start({"value": 1}))
    active = flows.long_flow.start({"value": 1})
    Run.objects.exclude(pk__in=[recent.pk, active.pk]).update(finished_at=timezone.now() - timedelta(days=40))
    Run.objects.filter(pk=active.pk).update(created_at=timezone.now() - timedelta(days=40))
    call_command("workflows_prune", "--older-than", "30d")
    assert set(Run.objects.values_list("pk", flat=True)) == {recent.pk, active.pk}
    assert not StepRun.objects.filter(run_id=old.pk).exists()
    assert not RunEvent.objects.exclude(run_id__in=[recent.pk, active.pk]).exists()


def test_prune__filters_by_status_and_rejects_bad_ages(engine_db):
    ok = finished(flows.counter.start({"value": 1}))
    bad = finished(flows.failing.start({"value": 1}))
    Run.objects.update(finished_at=timezone.now() - timedelta(hours=2))
    call_command("workflows_prune", "--older-than", "1h", "--status", "failed")
    assert list(Run.objects.values_list("pk", flat=True)) == [ok.pk]
    assert bad.pk not in Run.objects.values_list("pk", flat=True)
    with pytest.raises(CommandError):
        call_command("workflows_prune", "--older-than", "soon")
