"""Debounced starts: ``flow.start(data, debounce=(key, seconds[, max_wait]))`` (Inngest's debounce).

The first start with a key creates the run at once, ``pending`` with no step yet, and a ``Debounce`` row due
``seconds`` later; every start with the key before that row fires returns the same run, replaces its input (the
last one wins) and moves the due time to ``seconds`` after itself, but never past ``max_wait`` after the first
start (default: ``MAX_WAIT_FACTOR`` windows), so a steady stream of starts cannot hold the run back forever. The
recovery loop (and ``drain()``) fires a due row: it deletes it and enters the run's first block, in one
transaction; the next start with the key then makes a new run. Keys are per workflow and per starting user, like
idempotency keys. The row's unique key and its lock make concurrent starts, in any number of processes, one run.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import faults
from ..exceptions import InvalidInput
from ..store.journal import Journal
from ..store.models import Debounce, Run, RunStatus
from .advance import create_run, enter
from .core import graph_or_fail, lock, save

if TYPE_CHECKING:
    from ..definition.dsl import Workflow

MAX_WAIT_FACTOR = 10  # without an explicit max_wait, a run waits at most this many windows after its first start
MAX_SECONDS = 7 * 24 * 3600  # a window or max wait longer than a week is a mistake
BATCH = 200


def parse(debounce: Any) -> tuple[str, float, float]:
    """``(key, seconds)`` or ``(key, seconds, max_wait)`` checked: InvalidInput for anything else."""
    if not isinstance(debounce, tuple | list) or len(debounce) not in (2, 3):
        raise InvalidInput("debounce must be (key, seconds) or (key, seconds, max_wait)")
    key, seconds, *rest = debounce
    if not (isinstance(key, str) and 0 < len(key) <= 255 and "\x00" not in key):
        raise InvalidInput("debounce key must be a non-empty string of at most 255 characters, without NUL")
    max_wait = rest[0] if rest else None
    for name, value in (("seconds", seconds), ("max_wait", max_wait)):
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or not 0 < value <= MAX_SECONDS:
            raise InvalidInput(f"debounce {name} must be a number of seconds > 0 and at most {MAX_SECONDS}")
    if max_wait is None:
        max_wait = min(seconds * MAX_WAIT_FACTOR, MAX_SECONDS)
    if max_wait < seconds:
        raise InvalidInput("debounce max_wait must be at least its seconds")
    return key, float(seconds), float(max_wait)


def start(
    flow: Workflow, input_json: Any, *, debounce: Any, owner_id: int | None, scope: str, workflow_id: int,
    priority: int = 0,
) -> Run:  # fmt: skip
    """The run this start collapses into (its input replaced by this one), or a new one waiting for its window."""
    key, seconds, max_wait = parse(debounce)
    for _ in range(5):
        try:
            with transaction.atomic():
                return _start(flow, input_json, key, seconds, max_wait, owner_id, scope, workflow_id, priority)
        except IntegrityError:  # a concurrent first start with the key created its row first: join that run
            continue
    raise InvalidInput(f"debounce key {key!r}: too many concurrent starts, try again")


def _start(flow, input_json, key, seconds, max_wait, owner_id, scope, workflow_id, priority) -> Run:
    now = timezone.now()
    row = Debounce.objects.select_for_update().filter(workflow_id=workflow_id, scope=scope, key=key).first()
    if row is not None:
        run = lock(row.run_id)
        if run.status == RunStatus.PENDING and run.started_at is None:
            row.due_at = min(now + timedelta(seconds=seconds), row.deadline)
            row.starts += 1
            row.save(update_fields=["due_at", "starts"])
            run.input = input_json
            journal = Journal(run)
            journal.add("run_debounced", input=input_json, key=key, due_at=row.due_at.isoformat(), starts=row.starts)
            journal.flush()
            Run.objects.filter(pk=run.pk).update(input=input_json, last_seq=run.last_seq, updated_at=now)
            return run
        row.delete()  # its run was canceled while it waited: this start makes a new one
    due = now + timedelta(seconds=seconds)
    waiting = {"key": key, "due_at": due.isoformat(), "max_wait": max_wait}
    run = create_run(flow, input_json, owner_id=owner_id, workflow_id=workflow_id, debounce=waiting, priority=priority)
    Debounce.objects.create(
        workflow_id=workflow_id, scope=scope, key=key, run=run, due_at=due, deadline=now + timedelta(seconds=max_wait)
    )
    return run


def fire_due() -> int:
    """Start the debounced runs whose window has passed (the recovery loop calls it each tick). Returns how many."""
    rows = list(Debounce.objects.filter(due_at__lte=timezone.now()).order_by("due_at").values_list("pk")[:BATCH])
    return sum(fire(pk) for (pk,) in rows)


def fire(debounce_id: int) -> bool:
    """Start one due debounced run: exactly once, whatever the number of recovery loops."""
    with transaction.atomic():
        rows = Debounce.objects.filter(pk=debounce_id, due_at__lte=timezone.now())
        if transaction.get_connection().features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)  # another loop is firing it, or a start is moving it
        row = rows.first()
        if row is None:
            return False
        run = lock(row.run_id)
        row.delete()
        if run.status != RunStatus.PENDING or run.started_at is not None:
            return False  # canceled while it waited
        journal = Journal(run)
        journal.add("debounce_fired", starts=row.starts)
        graph = graph_or_fail(run, journal)
        if graph is not None:
            enter(run, graph, 0, run.input, journal)
        save(run, journal)
        faults.point("debounce_fire_before_commit")
    return True
