"""Tables of the test app: steps record each execution of their body here, in a transaction of their own."""

from django.db import models
from django.utils import timezone


class StepExecution(models.Model):
    """One execution of a step body (written by the step itself, so it survives the step's process dying)."""

    run_id = models.BigIntegerField()
    path = models.CharField(max_length=255)
    attempt = models.PositiveIntegerField()
    key = models.CharField(max_length=255, help_text="ctx.idempotency_key")
    planned_failure = models.BooleanField(default=False, help_text="the step raises on purpose after this")
    pid = models.IntegerField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "testapp"
        indexes = [models.Index(fields=["run_id", "path"], name="testapp_exec_run_path")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.path}:{self.attempt}"


class ToolExecution(models.Model):
    """One execution of an agent tool's body (the agent tests count them: a replayed call does not run)."""

    tool = models.CharField(max_length=100)
    args = models.JSONField(default=dict)
    pid = models.IntegerField()
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "testapp"

    def __str__(self) -> str:
        return f"{self.tool}({self.args})"
