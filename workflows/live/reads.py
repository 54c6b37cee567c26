"""What the consumer reads from the database: visibility, journal replays, run summaries.

Each function runs in Channels' sync thread (``database_sync_to_async``), which closes stale connections.
"""

from __future__ import annotations

import json
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user, get_user_model
from django.db.models import Q

from ..definition import registry
from ..store import tokens
from ..store.models import Run, RunEvent
from ..store.models import Workflow as WorkflowRow
from .payloads import SUMMARY_FIELDS, event_payload, summary


@database_sync_to_async
def sees_all(user) -> bool:
    return bool(user.is_staff or user.has_perm("workflows.view_all_runs"))


def bearer_secret(scope: dict[str, Any]) -> str | None:
    """The token of the handshake's ``Authorization: Bearer`` header (browsers cannot send one), else None."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            return tokens.parse_header(value.decode("latin1")) or ""
    return None


@database_sync_to_async
def token_user(secret: str) -> Any:
    return tokens.user_for(secret)


@database_sync_to_async
def current_user(scope: dict[str, Any], user) -> Any:
    """The connection's user as the database has it now, or None when their session ended (logout, expiry, a
    changed password) or the account is gone or inactive. Read afresh: the scope's session is cached."""
    if scope.get("workflows_token"):  # a token's connection ends when the token is revoked or expires
        now = tokens.user_for(scope["workflows_token"])
        return now if now is not None and now.pk == user.pk else None
    session = scope.get("session")
    if session is not None:
        store = import_module(settings.SESSION_ENGINE).SessionStore(session.session_key)
        now = get_user(SimpleNamespace(session=store))  # checks the session's auth hash, as a request would
        return now if now.is_authenticated and now.pk == user.pk else None
    return get_user_model()._default_manager.filter(pk=user.pk, is_active=True).first()  # no session: tests


@database_sync_to_async
def visible_ids(user, run_ids: list[int]) -> set[int]:
    return set(Run.objects.visible_to(user).filter(pk__in=run_ids).values_list("pk", flat=True))


@database_sync_to_async
def visible_last_seq(user, run_id: int) -> int | None:
    return Run.objects.visible_to(user).filter(pk=run_id).values_list("last_seq", flat=True).first()


@database_sync_to_async
def workflow_exists(name: str) -> bool:
    return name in {f.name for f in registry.all_workflows()} or WorkflowRow.objects.filter(name=name).exists()


@database_sync_to_async
def events_after(run_id: int, after: int, limit: int, max_bytes: int) -> tuple[list[dict[str, Any]], int]:
    """At most ``limit`` events after ``after``, and fewer once they hold ``max_bytes`` (at least one): a replay
    of large events never holds a whole batch of them in memory. Also returns the limit that applied: the
    events' count when the bytes cut it short."""
    rows = (
        RunEvent.objects.filter(run_id=run_id, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "kind", "step", "data", "at")[:limit]
    )
    events: list[dict[str, Any]] = []
    size = 0
    for row in rows.iterator(chunk_size=16):
        events.append(event_payload(*row))
        size += len(json.dumps(row[3], separators=(",", ":"), default=str))
        if size >= max_bytes:
            return events, len(events)
    return events, limit


def visible_runs(user, workflow: str | None):
    qs = Run.objects.visible_to(user)
    return qs.filter(workflow__name=workflow) if workflow else qs


@database_sync_to_async
def snapshot(user, workflow: str | None, limit: int) -> list[dict[str, Any]]:
    rows = visible_runs(user, workflow).order_by("-created_at", "-id").values(*SUMMARY_FIELDS)[:limit]
    return [summary(v) for v in rows]


@database_sync_to_async
def changed(user, workflow: str | None, active: list[int], after_id: int, limit: int) -> list[dict[str, Any]]:
    rows = (
        visible_runs(user, workflow)
        .filter(Q(pk__in=active) | Q(pk__gt=after_id))
        .order_by("id")
        .values(*SUMMARY_FIELDS)[:limit]
    )
    return [summary(v) for v in rows]


@database_sync_to_async
def last_seqs(run_ids: list[int]) -> dict[int, int]:
    return dict(Run.objects.filter(pk__in=run_ids).values_list("pk", "last_seq"))
