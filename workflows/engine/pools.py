"""Pool admission: pending -> queued, never past a pool's limit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import faults
from ..store import statements
from ..store.journal import Journal
from ..store.models import STEP_HOLDS_SLOT, Pool, StepRun, StepStatus

_known: dict[str, int] = {}  # pools whose row this process has written, with their limit


def admit(pool: str, max_parallel: int) -> list[int]:
    """pending -> queued for as many due steps of ``pool`` as it has free slots. Returns the admitted ids.

    The pool row's lock serialises admissions across processes, so queued + running never exceeds the limit.
    Older runs come first (run ids grow with creation): a run already under way (a retry, a loop iteration, a
    foreach item, its next step) is admitted before the first steps of runs created after it, however long
    those have waited, so work in progress finishes before new work starts and no run waits behind newer ones.
    Transitions never take a pool lock, so the order pool -> runs (by id) -> steps cannot deadlock.
    """
    if _known.get(pool) != max_parallel:
        Pool.objects.update_or_create(name=pool, defaults={"max_parallel": max_parallel})
        _known[pool] = max_parallel
    with transaction.atomic():
        list(Pool.objects.select_for_update().filter(name=pool).values_list("name"))  # the admission lock
        busy = StepRun.objects.filter(pool=pool, status__in=STEP_HOLDS_SLOT).count()
        free = max_parallel - busy
        if free <= 0:
            return []
        now = timezone.now()
        candidates = list(
            StepRun.objects.filter(pool=pool, status=StepStatus.PENDING, due_at__lte=now)
            .order_by("run_id", "due_at", "id")  # runs under way first: their retries and next steps, then newer runs
            .values_list("id", "run_id", "path", "attempt")[:free]
        )
        if not candidates:
            return []
        runs = {pk: statements.lock_run(pk) for pk in sorted({c[1] for c in candidates})}  # in id order
        journals = {pk: Journal(run) for pk, run in runs.items()}
        admitted = []
        for sr_id, run_id, path, attempt in candidates:
            queued = StepRun(pk=sr_id, status=StepStatus.QUEUED, queued_at=now)
            if statements.update_fields(queued, ["status", "queued_at"], where={"status": (StepStatus.PENDING,)}):
                admitted.append(sr_id)
                journals[run_id].add("step_queued", path, attempt=attempt)
        for pk, journal in journals.items():
            journal.flush()
            statements.update_fields(runs[pk], ["last_seq"])
        faults.point("admit_before_commit")
    return admitted
