"""What live updates carry: channel-layer groups, event payloads, and run summaries (shared with the consumer,
which replays the same shapes from the database).

Every transaction's new ``RunEvent``s become, per run, three channel-layer messages: the events themselves to
the run's group, and a compact summary of the run (status, progress, timestamps) to its workflow's group and to
the runs-list group.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections import defaultdict
from typing import Any

from .. import conf
from ..definition import registry
from ..exceptions import UnknownWorkflow
from ..store.models import Run, RunEvent, RunStatus

log = logging.getLogger(__name__)

RUNS_GROUP = "workflows.runs"


def run_group(run_id: int) -> str:
    return f"workflows.run.{run_id}"


@functools.lru_cache(maxsize=1024)
def workflow_group(name: str) -> str:
    # group names allow only [a-zA-Z0-9._-] and < 100 characters: hash the name rather than trust it
    return f"workflows.workflow.{hashlib.sha256(name.encode()).hexdigest()[:32]}"


def _iso(dt) -> str | None:
    return dt.isoformat() if dt else None


def event_payload(seq: int, kind: str, step: str, data: Any, at) -> dict[str, Any]:
    return {"seq": seq, "kind": kind, "step": step, "data": data, "at": _iso(at)}


SUMMARY_FIELDS = (
    "id",
    "workflow__name",
    "status",
    "cursor",
    "last_seq",
    "created_by_id",
    "created_at",
    "started_at",
    "finished_at",
    "updated_at",
    "error",
)
_MODEL_FIELDS = {"status", "cursor", "last_seq", "created_by_id", "created_at", "started_at", "finished_at", "error"}
ERROR_CHARS = 300  # of an error's message in a summary: the run page has all of it


def error_brief(error: Any) -> dict[str, str] | None:
    """A run's error as the lists show it: its type and the start of its message."""
    if not isinstance(error, dict):
        return None
    message = str(error.get("message") or "")
    if len(message) > ERROR_CHARS:
        message = message[: ERROR_CHARS - 1] + "…"
    return {"type": str(error.get("type") or "Error"), "message": message}


def progress(workflow: str, status: str, cursor: int) -> float | None:
    """Fraction of the workflow's blocks behind the run (1.0 once it succeeded); None for an unknown workflow."""
    if status == RunStatus.SUCCEEDED:
        return 1.0
    try:
        blocks = registry.get(workflow).graph.body_end  # completion hooks run after the run ended
    except UnknownWorkflow:
        return None
    return round(min(cursor, blocks) / blocks, 3) if blocks else None


def summary(values: dict[str, Any]) -> dict[str, Any]:
    """The runs-list view of a run, from a ``Run.objects.values(*SUMMARY_FIELDS)`` row."""
    name = values["workflow__name"]
    return {
        "id": values["id"],
        "workflow": name,
        "status": values["status"],
        "seq": values["last_seq"],
        "progress": progress(name, values["status"], values["cursor"]),
        "created_at": _iso(values["created_at"]),
        "started_at": _iso(values["started_at"]),
        "finished_at": _iso(values["finished_at"]),
        "updated_at": _iso(values["updated_at"]),
        "error": error_brief(values.get("error")),
    }


def _values_of(run: Run) -> dict[str, Any] | None:
    """The summary fields of an in-memory run, or None when some were not loaded (then read the row)."""
    if run.get_deferred_fields() & _MODEL_FIELDS or not Run.workflow.is_cached(run):
        return None
    values = {f: getattr(run, f) for f in _MODEL_FIELDS}
    values.update(id=run.pk, workflow__name=run.workflow.name, updated_at=run.updated_at)
    return values


def messages_for(events: list[RunEvent]) -> list[tuple[str, dict[str, Any]]]:
    """(group, message) pairs for committed events (one transaction's, or several held together): per run, its
    events and its summary."""
    max_bytes = conf.live("MAX_EVENT_BYTES")
    by_run: dict[int, list[RunEvent]] = defaultdict(list)
    for ev in events:
        by_run[ev.run_id].append(ev)
    messages = []
    missing = []
    runs = {}
    for run_id, evs in by_run.items():
        evs.sort(key=lambda e: e.seq)
        payloads = []
        for e in evs:
            payload = event_payload(e.seq, e.kind, e.step, e.data, e.at)
            if len(json.dumps(e.data, separators=(",", ":"), default=str)) > max_bytes:
                payload = {"seq": e.seq, "stub": True}  # the consumer reads this one from the journal
            payloads.append(payload)
        messages.append((run_group(run_id), {"type": "run.events", "run": run_id, "events": payloads}))
        values = _values_of(evs[-1].run)  # the run as its latest transaction left it
        if values is None:
            missing.append(run_id)
        else:
            runs[run_id] = values
    if missing:
        try:
            runs.update((v["id"], v) for v in Run.objects.filter(pk__in=missing).values(*SUMMARY_FIELDS))
        except Exception:  # the events still go out; the runs list catches up at the run's next change
            log.warning("live updates: could not read runs %s for their summaries", missing, exc_info=True)
    for values in runs.values():
        s = summary(values)
        owner = values["created_by_id"]
        messages.append((RUNS_GROUP, {"type": "run.summary", "topic": "runs", "owner": owner, "run": s}))
        messages.append(
            (
                workflow_group(s["workflow"]),
                {"type": "run.summary", "topic": f"workflow:{s['workflow']}", "owner": owner, "run": s},
            )
        )
    return messages
