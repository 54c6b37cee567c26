"""Who may see and change a run (``Run.objects.visible_to`` decides what a user sees)."""

from __future__ import annotations

from typing import Any

from ..store.models import Run


def can_operate(user: Any, run: Run) -> bool:
    """Who may cancel, resume, retry…: the run's owner, staff, and holders of ``workflows.change_run``."""
    return bool(
        user.is_staff or (run.created_by_id and run.created_by_id == user.pk) or user.has_perm("workflows.change_run")
    )
