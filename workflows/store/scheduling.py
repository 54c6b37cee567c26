"""Stored schedules: the code-defined ones (synced from ``Workflow(schedules=...)``) and those created at runtime
from the dashboard, the admin or the API; and one ``ScheduleFire`` row per due time handled (started or skipped).

A schedule's ``next_due`` is the first due time not handled yet; firing moves it forward with a compare-and-set,
so one process alone handles each due time (``engine.schedules``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models

from ..definition import schedule as cron
from .models import Run, Workflow

__all__ = ["Schedule", "ScheduleFire"]


class Schedule(models.Model):
    class Overlap(models.TextChoices):
        SKIP = "skip"
        ALLOW = "allow"
        CANCEL_PREVIOUS = "cancel_previous"

    class Catchup(models.TextChoices):
        NONE = "none"
        LATEST = "latest"
        ALL = "all"

    class Source(models.TextChoices):
        CODE = "code"  # from Workflow(schedules=...): edited in code; the UI may only pause it
        RUNTIME = "runtime"  # created from the dashboard, the admin or the API

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100, help_text="unique within the workflow")
    cron = models.CharField(max_length=cron.CRON_MAX, help_text="5 fields: minute hour day month weekday")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Lisbon")
    input = models.JSONField(null=True, blank=True)
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.SKIP)
    catchup = models.CharField(max_length=16, choices=Catchup.choices, default=Catchup.LATEST)
    paused = models.BooleanField(default=False)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.RUNTIME, editable=False)
    next_due = models.DateTimeField(null=True, blank=True, help_text="the first due time not handled yet (UTC)")
    last_due = models.DateTimeField(null=True, blank=True, help_text="the last due time handled")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_schedules"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workflow__name", "name"]
        constraints = [models.UniqueConstraint(fields=["workflow", "name"], name="workflows_schedule_unique_name")]
        indexes = [models.Index(fields=["paused", "next_due"], name="workflows_schedule_due")]

    def __str__(self) -> str:
        return f"{self.workflow.name}/{self.name} ({self.cron} {self.timezone})"

    @property
    def from_code(self) -> bool:
        return self.source == self.Source.CODE

    @property
    def run_scope(self) -> str:
        """The idempotency scope of its runs (a user's scope is their pk: digits, never this)."""
        return f"schedule:{self.pk}"

    def next_times(self, after: datetime, n: int = 5) -> list[datetime]:
        return cron.times_after(self.cron, self.timezone, after, n)

    def active_runs(self) -> models.QuerySet[Run]:
        from .models import RUN_ACTIVE

        return Run.objects.filter(idempotency_scope=self.run_scope, status__in=RUN_ACTIVE)

    def as_definition(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in ("cron", "timezone", "input", "overlap", "catchup")}


class ScheduleFire(models.Model):
    """A due time of a schedule, handled once: the run it started, or why none was."""

    class Outcome(models.TextChoices):
        STARTED = "started"
        SKIPPED = "skipped"  # overlap=skip and a previous run was still active
        FAILED = "failed"  # the start itself failed (e.g. input no longer valid): recorded, not retried

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    due_at = models.DateTimeField()
    run = models.OneToOneField(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedule_fire")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    detail = models.CharField(max_length=500, blank=True)
    fired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-due_at"]
        constraints = [models.UniqueConstraint(fields=["schedule", "due_at"], name="workflows_schedulefire_once")]

    def __str__(self) -> str:
        return f"{self.schedule_id}@{self.due_at.isoformat()}: {self.outcome}"
