"""What the pools page, the run page and the API (``web.api.pools``) share: who may change a pool, and why each
pending step of a run waits."""

from __future__ import annotations

from typing import Any

from ..engine import pool_control
from ..store.models import Run, StepRun


def can_control(user: Any) -> bool:
    return bool(user.is_staff or user.has_perm("workflows.change_pool"))


def waits_of(run: Run) -> list[dict[str, Any]]:
    """Each pending step of the run with why it waits (``reason``: paused, rate, backoff, key, pool_full,
    priority, foreach, admitting), a sentence, and ``until`` when it may go, if known."""
    reasons = pool_control.wait_reasons(run.pk)
    rows = StepRun.objects.filter(pk__in=list(reasons)).order_by("block", "path").values_list("pk", "path", "pool")
    return [{"path": path, "pool": pool, **vars(reasons[pk])} for pk, path, pool in rows]
