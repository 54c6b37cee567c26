"""Debounced starts (``flow.start(data, debounce=(key, seconds))``): one row per key whose run has not started yet."""

from __future__ import annotations

from django.db import models


class Debounce(models.Model):
    """A debounced run waiting for its key to go quiet. Each start with the key replaces the run's input and moves
    ``due_at`` to ``seconds`` after it, never past ``deadline`` (the max wait from the first start); the recovery
    loop starts the run once ``due_at`` passes and deletes the row, so the next start with the key makes a new run.
    Written by the engine only (``engine.debounce``); the unique key makes concurrent first starts one run."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="debounces")
    scope = models.CharField(max_length=64, blank=True, default="", help_text="whose key, as for idempotency keys")
    key = models.CharField(max_length=255)
    run = models.OneToOneField("workflows.Run", on_delete=models.CASCADE, related_name="debounce")
    due_at = models.DateTimeField(help_text="the run starts then, unless another start comes first")
    deadline = models.DateTimeField(help_text="the run starts by then whatever comes (the max wait)")
    starts = models.PositiveIntegerField(default=1, help_text="starts collapsed into the run so far")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "scope", "key"], name="workflows_debounce_key")]
        indexes = [models.Index(fields=["due_at"], name="workflows_debounce_due")]

    def __str__(self) -> str:
        return f"{self.key} -> run {self.run_id}"
