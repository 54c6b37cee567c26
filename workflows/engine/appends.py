"""Journal lines outside transitions: a step's log lines and progress, and a step's result for its context."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from ..store import values
from ..store.journal import Journal
from ..store.models import Run, StepRun, StepStatus


def append(run_id: int, kind: str, step: str = "", /, **data: Any) -> None:
    """Append one event in a transaction of its own, published at once (with what a job held before it)."""
    record(run_id, kind, step, _urgent=True, **data)


def record(run_id: int, kind: str, step: str = "", /, _urgent: bool = False, **data: Any) -> None:
    """Append one event in a transaction of its own, published like a transition's (held within a job)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().only("id", "last_seq").get(pk=run_id)
        journal = Journal(run, urgent=_urgent)
        journal.add(kind, step, **data)
        journal.flush()
        Run.objects.filter(pk=run_id).update(last_seq=run.last_seq)


def step_result(run_id: int, step_id: str) -> Any:
    """JSON output of the latest successful attempt of ``step_id`` in a run (None if it has none)."""
    row = (
        StepRun.objects.filter(run_id=run_id, path=step_id, status=StepStatus.SUCCEEDED)
        .order_by("-block", "-attempt")
        .values_list("output", "output_ref")
        .first()
    )
    if row is None and not StepRun.objects.filter(run_id=run_id, path=step_id).exists():
        raise KeyError(f"No step {step_id!r} in run {run_id}")
    if row is None:
        return None
    output, ref = row
    return values.resolve(run_id, ref) if ref is not None else output
