"""Agents' conversations: one row per model message (``agent_step``), with its tokens; a thread key links runs."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Count, Sum
from django.utils import timezone

SUBSTEP_KINDS = ("model", "tool")  # StepRun.kind of an agent step's model requests and tool calls


class AgentMessage(models.Model):
    """One message of an agent step's conversation: a request sent to the model or its response.

    Written by the engine (``engine.substeps``) in the transaction that records the model request's step row,
    so a message is stored exactly once even when the agent step runs again and replays its requests.
    """

    run = models.ForeignKey("workflows.Run", on_delete=models.CASCADE, related_name="agent_messages")
    block = models.PositiveIntegerField(default=0)
    step_path = models.CharField(max_length=255, help_text="the agent step's path, e.g. answer")
    request_path = models.CharField(max_length=255, help_text="the model request's path, e.g. answer/model#2")
    thread = models.CharField(max_length=200, blank=True, db_index=True)
    seq = models.PositiveIntegerField(help_text="order within the agent step")
    kind = models.CharField(max_length=16, help_text="request or response")
    message = models.JSONField(help_text="the pydantic-ai message (ModelMessagesTypeAdapter), parts included")
    model_name = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    duration = models.FloatField(null=True, blank=True, help_text="seconds the model took (responses)")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "block", "step_path", "seq"], name="workflows_agentmessage_seq")
        ]
        indexes = [models.Index(fields=["thread", "id"], name="workflows_agentmessage_thread")]

    def __str__(self) -> str:
        return f"{self.step_path} #{self.seq} {self.kind}"

    @property
    def parts(self) -> list[dict[str, Any]]:
        return list((self.message or {}).get("parts") or [])

    @property
    def text(self) -> str:
        """What a person reads: the text, tool calls and tool results of the message, one per line."""
        lines = []
        for part in self.parts:
            kind = part.get("part_kind")
            if kind in ("text", "user-prompt", "system-prompt"):
                content = part.get("content")
                lines.append(content if isinstance(content, str) else str(content))
            elif kind == "tool-call":
                lines.append(f"→ {part.get('tool_name')}({part.get('args')})")
            elif kind == "tool-return":
                lines.append(f"← {part.get('tool_name')}: {part.get('content')}")
            elif kind == "retry-prompt":
                lines.append(f"↻ {part.get('content')}")
        return "\n".join(lines)


def usage_of(run_id: int) -> dict[str, Any]:
    """Tokens of a run's model requests: in total and per agent step (``{"input_tokens", "output_tokens",
    "total_tokens", "requests", "steps": {path: {...}}}``)."""
    rows = (
        AgentMessage.objects.filter(run_id=run_id, kind="response")
        .values("step_path")
        .annotate(i=Sum("input_tokens"), o=Sum("output_tokens"), n=Count("id"))
        .order_by("step_path")
    )
    steps = {
        r["step_path"]: {"input_tokens": r["i"] or 0, "output_tokens": r["o"] or 0, "requests": r["n"]} for r in rows
    }
    for s in steps.values():
        s["total_tokens"] = s["input_tokens"] + s["output_tokens"]
    keys = ("input_tokens", "output_tokens", "total_tokens", "requests")
    total = {k: sum(s[k] for s in steps.values()) for k in keys}
    return {**total, "steps": steps}


def tokens_of_runs(run_ids: list[int]) -> dict[int, dict[str, int]]:
    """Input and output tokens of each of these runs (one query: for a list of runs); runs with no model
    request are left out."""
    rows = (
        AgentMessage.objects.filter(run_id__in=list(run_ids), kind="response")
        .values("run_id")
        .annotate(i=Sum("input_tokens"), o=Sum("output_tokens"))
        .order_by()
    )
    return {
        r["run_id"]: {
            "input_tokens": r["i"] or 0,
            "output_tokens": r["o"] or 0,
            "total_tokens": (r["i"] or 0) + (r["o"] or 0),
        }
        for r in rows
    }
