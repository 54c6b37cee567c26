"""Bookkeeping a worker and recovery do on step rows without a transition: leases and re-enqueue marks."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from ..store.models import RUN_ACTIVE, StepRun, StepStatus


def still_running(step_run_id: int, attempt: int, renew_for: float | None = None) -> bool:
    """Is this attempt still running in an active run (or as a completion hook, which runs after its run ended)?
    With ``renew_for``, extend its lease that many seconds."""
    mine = StepRun.objects.filter(pk=step_run_id, attempt=attempt, status=StepStatus.RUNNING).filter(
        Q(run__status__in=RUN_ACTIVE) | ~Q(hook="")
    )
    if renew_for is not None:
        return bool(mine.update(lease_expires_at=timezone.now() + timedelta(seconds=renew_for)))
    return mine.exists()


def mark_requeued(step_run_id: int, queued_before: datetime) -> bool:
    """Claim the re-enqueueing of a queued step whose job is lost: True for exactly one caller.

    ``queued_at`` is not a status: bumping it keeps two recovery loops from enqueuing the step again at once.
    """
    return bool(
        StepRun.objects.filter(pk=step_run_id, status=StepStatus.QUEUED, queued_at__lte=queued_before).update(
            queued_at=timezone.now()
        )
    )
