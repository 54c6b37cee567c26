"""A finishing step hands its pool slot straight to the next ready step of the same pool, in the same transaction.

Without it, a step's successor waits for a second transaction (pool admission), an RQ round trip and a third
(the claim). With it, the completion that frees a slot gives that slot to the successor at once: the pool's
count of slot holders does not change, so no pool lock is needed, and the limit holds across processes.

The successor takes the slot even when other ready steps wait for one: runs already under way come before new
ones ("finish what you started": less work in progress, and no starvation, since every run ends). Steps without
a slot to take are admitted oldest first. If the finishing worker may run the successor itself
(``EAGER_SECONDS``, ``Workflow(eager=)``, see ``jobs``) and the successor is not ``isolated``, the successor is
claimed for it in the same transaction (``running`` with the worker's lease) and runs without a trip through
Redis; otherwise it is ``queued`` and enqueued on commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .. import conf
from ..store import handoff_statements
from ..store.journal import Journal
from ..store.models import StepRun, StepStatus
from . import dispatch, pools
from .core import running_fields


@dataclass
class Slot:
    """The pool slot of a step that just finished, offered for the rest of its transaction."""

    pool: str
    worker: str | None  # the worker that runs the taker at once; None: the taker is queued
    taker: StepRun | None = None
    key: str = ""  # only a step of the same concurrency key may take it (that key's count does not change)
    open: bool = True  # False: the pool's admission decides (paused, limit lowered, rate, higher priority)


def offer(journal: Journal, pool: str, worker: str | None, key: str = "", priority: int = 0) -> Slot:
    journal.slot = slot = Slot(pool, worker, key=key, open=bool(pool) and may_hand_over(pool, priority))
    return slot


def may_hand_over(pool: str, priority: int) -> bool:
    """Whether a finishing step of ``pool`` may hand its slot on without the pool's admission: not when the pool
    is paused or holds as many slots as its (lowered) runtime limit, has a rate, or a step of higher priority
    waits for it."""
    settings = conf.pools().get(pool)
    if settings is None or settings.rate or settings.key_rate or settings.tokens:
        return False
    row = handoff_statements.pool_handoff(pool, priority)  # one read, its SQL built once
    if row is None:  # the pool's row exists once a step of it was admitted
        row = False, None, StepRun.objects.filter(pool=pool, status=StepStatus.PENDING, priority__gt=priority).exists()
    paused, limit, waits = row
    if paused or waits:
        return False
    return limit is None or pools.busy(pool) < limit


def fields_for(journal: Journal, pool: str, key: str = "", isolated: bool = False) -> dict[str, Any] | None:
    """The fields that give a ready step of ``pool`` (with concurrency key ``key``) the offered slot; None if
    there is none for it. An ``isolated`` step (``@step(isolated=True)``) takes the slot but is queued for a job
    of its own, never claimed for the finishing worker."""
    slot: Slot | None = journal.slot
    if slot is None or not slot.open or slot.taker is not None or slot.pool != pool or slot.key != key:
        return None
    now = timezone.now()
    if slot.worker and not isolated:
        return {"due_at": now, "queued_at": now, **running_fields(slot.worker, now)}
    return {"status": StepStatus.QUEUED, "due_at": now, "queued_at": now}


def taken(journal: Journal, sr: StepRun) -> None:
    """``sr`` holds the offered slot now: journal it, and enqueue it on commit unless its worker runs it."""
    slot: Slot = journal.slot
    slot.taker = sr
    journal.add("step_queued", sr.path, attempt=sr.attempt)
    if sr.status == StepStatus.RUNNING:
        journal.add("step_running", sr.path, attempt=sr.attempt, worker=sr.worker)
    else:
        dispatch.enqueue_after_commit(sr.pk, sr.pool)
