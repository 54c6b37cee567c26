"""Workflows, runs, step attempts and the run journal. Statuses change only in ``engine``."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..definition import ports

__all__ = [
    "RUN_ACTIVE",
    "RUN_TERMINAL",
    "STEP_HOLDS_SLOT",
    "STEP_OPEN",
    "AgentMessage",
    "ApiToken",
    "Debounce",
    "InboundEvent",
    "Pool",
    "Run",
    "RunEvent",
    "RunQuerySet",
    "RunStatus",
    "StepRun",
    "StepRunQuerySet",
    "StepStatus",
    "Workflow",
    "WorkflowVersion",
]


class RunStatus(models.TextChoices):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUSPENDED = "suspended"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class StepStatus(models.TextChoices):
    PENDING = "pending"  # ready, waiting for a pool slot or its due time
    QUEUED = "queued"  # holds a pool slot, an RQ job exists
    RUNNING = "running"  # claimed by a worker, under lease
    WAITING = "waiting"
    SUSPENDED = "suspended"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    SKIPPED = "skipped"  # a branch not taken


RUN_TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED)
RUN_ACTIVE = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.SUSPENDED)
STEP_OPEN = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SUSPENDED)
STEP_HOLDS_SLOT = (StepStatus.QUEUED, StepStatus.RUNNING)


class Workflow(models.Model):
    """The stored description of a registered workflow (the code lives in the app's ``flows.py``)."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    version = models.CharField(max_length=64)
    graph = models.JSONField(default=dict)
    input_schema = models.JSONField(default=dict, blank=True)
    output_schema = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RunQuerySet(models.QuerySet):
    def active(self) -> RunQuerySet:
        return self.filter(status__in=RUN_ACTIVE)

    def terminal(self) -> RunQuerySet:
        return self.filter(status__in=RUN_TERMINAL)

    def visible_to(self, user: Any) -> RunQuerySet:
        """Runs a user may see: their own; staff and holders of ``view_all_runs`` see all."""
        if not user or not user.is_authenticated:
            return self.none()
        if user.is_staff or user.has_perm("workflows.view_all_runs"):
            return self
        return self.filter(created_by=user)


class Run(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    version = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    output_ref = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="a large output stored once: where it is (store.values); output is null"
    )
    error = models.JSONField(null=True, blank=True)
    traceback = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    idempotency_scope = models.CharField(
        max_length=64, blank=True, default="", help_text="whose key: the starting user's pk; '' without a user"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="workflow_runs"
    )
    parent_step = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="child_runs"
    )
    priority = models.IntegerField(default=0, help_text="higher is admitted first (flow.start(priority=))")
    state = models.JSONField(null=True, blank=True, help_text="the run's shared state (Workflow(state=...))")
    restarted_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="restarts"
    )
    cursor = models.PositiveIntegerField(default=0, help_text="index of the block being executed")
    last_seq = models.PositiveIntegerField(default=0, help_text="seq of the newest RunEvent")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("view_all_runs", "Can see every user's runs")]
        constraints = [
            models.UniqueConstraint(  # a key is per user: one user's key neither blocks nor reveals another's
                fields=["workflow", "idempotency_scope", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="workflows_run_unique_idempotency_key_scope",
            )
        ]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="workflows_run_created"),
            models.Index(fields=["status", "-created_at"], name="workflows_run_status"),
            models.Index(fields=["workflow", "-created_at"], name="workflows_run_workflow"),
            models.Index(fields=["workflow", "status", "-created_at"], name="workflows_run_wf_status"),
            models.Index(fields=["created_by", "-created_at"], name="workflows_run_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id and self.workflow.name} #{self.pk}"

    @classmethod
    def from_db(cls, db, field_names, values):
        """A large output stored once (``output_ref``) is read from where it is: ``run.output`` is the value."""
        run = super().from_db(db, field_names, values)
        if "output" in run.__dict__ and run.__dict__["output"] is None:
            from .values import fill_run_output

            fill_run_output(run)
        return run

    @property
    def is_terminal(self) -> bool:
        return self.status in RUN_TERMINAL

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def usage(self) -> dict[str, Any]:
        """Tokens its agent steps used: ``{"input_tokens", "output_tokens", "total_tokens", "requests",
        "steps": {path: {...}}}`` (all zero for a run without agent steps)."""
        from .conversations import usage_of

        return usage_of(self.pk)

    def step(self, step_id: str) -> StepRun | None:
        """The latest attempt of a step (or of a step path such as ``"item[3]"``), its input and output values
        read from where they are stored (``store.values``)."""
        from .values import fill_step

        sr = self.steps.filter(path=step_id).order_by("-block", "-attempt", "-id").first()
        return fill_step(sr) if sr is not None else None

    def cancel(self) -> Run:
        """Cancel the run and its child runs; running steps are interrupted by their workers."""
        ports.engine().cancel(self.pk)
        self.refresh_from_db()
        return self

    def resume(self, step: str | None = None, data: Any = None, *, label: str | None = None) -> Run:
        """Resume a suspended step (``"child.step"`` reaches into a nested workflow); it re-runs with the data."""
        ports.engine().resume(self.pk, step=step, label=label, data=data)
        self.refresh_from_db()
        return self

    def send_event(self, name: str, data: Any = None) -> Run:
        """Deliver an event; kept until the run reaches its ``wait_for_event(name)`` block."""
        ports.engine().send_event(self.pk, name, data)
        self.refresh_from_db()
        return self

    def restart(self, from_step: str, input: Any = None) -> Run:
        """A new run of the same version reusing the outputs of every block before ``from_step``."""
        return ports.engine().restart(self.pk, from_step=from_step, input=input)

    def retry(self) -> Run:
        """A new run that re-runs this failed (or canceled) run from its failed step."""
        return ports.engine().retry(self.pk)

    def wait(self, timeout: float = 30, poll: float = 0.05, *, hooks: bool = False) -> Run:
        """Block until the run is terminal or suspended; return it refreshed. TimeoutError past ``timeout``.
        With ``hooks``, a terminal run's completion hooks must have finished too."""
        deadline = time.monotonic() + timeout
        while True:
            self.refresh_from_db()
            if self.status == RunStatus.SUSPENDED or (
                self.status in RUN_TERMINAL and not (hooks and self.steps.exclude(hook="").open().exists())
            ):
                return self
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Run {self.pk} is still {self.status} after {timeout}s")
            time.sleep(poll)


class StepRunQuerySet(models.QuerySet):
    def open(self) -> StepRunQuerySet:
        return self.filter(status__in=STEP_OPEN)

    def expired_leases(self, now=None) -> StepRunQuerySet:
        return self.filter(status=StepStatus.RUNNING, lease_expires_at__lt=now or timezone.now())


class StepRun(models.Model):
    """One attempt of one step of one run (a retry is a new row)."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    block = models.PositiveIntegerField()
    path = models.CharField(max_length=255)
    step_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, default="step")
    index = models.PositiveIntegerField(null=True, blank=True, help_text="loop iteration or foreach item")
    label = models.CharField(max_length=100, blank=True, help_text="the label of its last suspend")
    hook = models.CharField(
        max_length=8, blank=True, default="", help_text="a completion hook's end: success, failure or finish"
    )
    suspend_payload = models.JSONField(null=True, blank=True)
    resume_data = models.JSONField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    pool = models.CharField(max_length=100, blank=True)
    priority = models.IntegerField(default=0, help_text="its run's priority, copied for admission")
    concurrency_key = models.CharField(max_length=200, blank=True, help_text="computed once, when it became pending")
    key_limit = models.PositiveIntegerField(null=True, blank=True, help_text="slots its key may hold in its pool")
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    input_ref = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="a large input stored once: where it is (store.values); input is null"
    )
    output_ref = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="a large output stored once: where it is (store.values); output is null"
    )
    error = models.JSONField(null=True, blank=True)
    traceback = models.TextField(blank=True)
    due_at = models.DateTimeField(null=True, blank=True, help_text="not before this time (retry backoff)")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = StepRunQuerySet.as_manager()

    class Meta:
        ordering = ["run", "block", "path", "attempt"]
        constraints = [
            models.UniqueConstraint(fields=["run", "block", "path", "attempt"], name="workflows_steprun_attempt")
        ]
        indexes = [
            models.Index(fields=["run", "block", "status"], name="workflows_steprun_block"),
            models.Index(fields=["pool", "status", "due_at"], name="workflows_steprun_ready"),
            models.Index(fields=["pool", "status", "run", "due_at"], name="workflows_steprun_fair"),
            models.Index(fields=["status", "lease_expires_at"], name="workflows_steprun_lease"),
            models.Index(fields=["run", "step_id"], name="workflows_steprun_step"),
            models.Index(fields=["pool", "concurrency_key", "status"], name="workflows_steprun_key"),
            models.Index(fields=["pool", "queued_at"], name="workflows_steprun_started"),
            models.Index(fields=["pool", "status", "priority"], name="workflows_steprun_priority"),
        ]

    def __str__(self) -> str:
        return f"{self.path} (attempt {self.attempt}, {self.status})"

    @property
    def duration(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class RunEvent(models.Model):
    """The run's journal: gapless ``seq`` per run; the dashboard and the websocket replay it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=32)
    step = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="workflows_runevent_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} {self.step}".strip()


class InboundEvent(models.Model):
    """An event sent to a run (``run.send_event``), kept until a ``wait_for_event`` block consumes it."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inbound_events")
    name = models.CharField(max_length=100)
    data = models.JSONField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    consumed_by = models.ForeignKey(
        "StepRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="consumed_events"
    )

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "name", "consumed_by"], name="workflows_inbound_pending")]

    def __str__(self) -> str:
        return f"{self.name} -> run {self.run_id}"


class WorkflowVersion(models.Model):
    """Every version of a workflow's graph that runs started on, for drawing old runs."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64)
    graph = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "version"], name="workflows_version_unique")]

    def __str__(self) -> str:
        return f"{self.workflow_id}@{self.version}"


class Pool(models.Model):
    """A pool's row: its lock serialises admissions, so running steps never exceed its limit. ``max_parallel`` is
    the settings' value (kept in sync); ``limit`` and ``paused`` are changed at runtime (``engine.pool_control``)."""

    name = models.CharField(max_length=100, primary_key=True)
    max_parallel = models.PositiveIntegerField(default=10, help_text="from settings")
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="set at runtime; empty: max_parallel")
    paused = models.BooleanField(default=False, help_text="a paused pool admits nothing; running steps finish")

    def __str__(self) -> str:
        return self.name

    @property
    def effective_limit(self) -> int:
        return self.max_parallel if self.limit is None else self.limit


from .conversations import AgentMessage  # noqa: E402  (a model of this app, in a module of its own)
from .debounces import Debounce  # noqa: E402  (likewise)


class ApiToken(models.Model):
    """A personal API token: ``Authorization: Bearer <secret>`` acts as ``user``. Only the secret's SHA-256 is
    kept (the secret is shown once, when created); revoking deletes the row (``store.tokens``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflow_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="the secret's first characters, to recognise it")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the secret, hex")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
