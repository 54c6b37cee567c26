"""Lists of runs: the filters of the runs pages and the API, keyset pagination, and a run's summary row.

Run lists use keyset pagination on ``(created_at, id)`` and a capped count, so that a page costs the same with
100 runs or 100,000: no ``OFFSET``, no full ``COUNT(*)``. Every query starts from ``Run.objects.visible_to``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ...live.payloads import progress
from ...store.conversations import tokens_of_runs
from ...store.models import Run, RunStatus

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
COUNT_CAP = 10_000
LIST_DEFER = ("input", "output", "traceback", "state")  # not error: the lists show its type and message
Q_MAX = 200  # characters of a search
SEARCH_WINDOW = 10_000  # the search over inputs reads at most the newest this many runs (of the other filters)


# --- filters ---------------------------------------------------------------------------------------------------


@dataclass
class RunFilters:
    """The runs list's filters, parsed from query parameters (the page's form and the API share them)."""

    workflow: str = ""
    statuses: tuple[str, ...] = ()
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None  # exclusive
    q: str = ""
    raw: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Any, *, workflow: str = "") -> tuple[RunFilters, dict[str, str]]:
        """(filters, errors by parameter name); a bad parameter is reported and ignored."""
        errors: dict[str, str] = {}
        f = cls(workflow=workflow or str(params.get("workflow", "")).strip()[:100])
        if "\x00" in f.workflow:  # PostgreSQL cannot compare text with NUL characters: refused before the query
            errors["workflow"], f.workflow = "workflow must not contain NUL characters", ""
        statuses = []
        for value in params.getlist("status") if hasattr(params, "getlist") else [params.get("status", "")]:
            for s in str(value).split(","):
                s = s.strip()
                if not s:
                    continue
                if s not in RunStatus.values:
                    errors["status"] = f"unknown status {s!r}: use one of {', '.join(RunStatus.values)}"
                elif s not in statuses:
                    statuses.append(s)
        f.statuses = tuple(statuses)
        for name in ("created_from", "created_to"):
            text = str(params.get(name, "") or "").strip()
            if not text:
                continue
            when = _parse_when(text, end=name == "created_to")
            if when is None:
                errors[name] = f"{name} must be a date (YYYY-MM-DD) or an ISO datetime between years 1 and 9999"
            else:
                setattr(f, name, when)
        f.q = str(params.get("q", "") or "").strip()
        if len(f.q) > Q_MAX:
            errors["q"], f.q = f"q must be at most {Q_MAX} characters (it has {len(f.q)})", ""
        elif "\x00" in f.q or any(0xD800 <= ord(c) <= 0xDFFF for c in f.q):
            errors["q"], f.q = "q must not contain NUL characters or lone surrogates", ""
        f.raw = {
            k: str(params.get(k))
            for k in ("workflow", "created_from", "created_to", "q")
            if params.get(k) and k not in errors and "\x00" not in str(params.get(k)) and len(str(params.get(k))) <= 255
        }
        if workflow:
            f.raw.pop("workflow", None)
        return f, errors

    def apply(self, qs: QuerySet) -> QuerySet:
        if self.workflow:
            qs = qs.filter(workflow__name=self.workflow)
        if self.statuses:
            qs = qs.filter(status__in=self.statuses)
        if self.created_from:
            qs = qs.filter(created_at__gte=self.created_from)
        if self.created_to:
            qs = qs.filter(created_at__lt=self.created_to)
        if self.q:
            match = re.fullmatch(r"#?(\d{1,18})", self.q)
            cond = Q(idempotency_key__icontains=self.q)
            if match:
                cond |= Q(pk=int(match[1]))
            newest = qs.order_by("-created_at", "-id").values("pk")[:SEARCH_WINDOW]
            in_input = Q()
            for text in _json_forms(self.q):
                in_input |= Q(input_text__icontains=text)
            qs = qs.annotate(input_text=Cast("input", TextField())).filter(cond | (Q(pk__in=newest) & in_input))
        return qs

    def params(self) -> list[tuple[str, str]]:
        """Query parameters reproducing these filters (for pagination links)."""
        items = [(k, v) for k, v in self.raw.items()]
        items += [("status", s) for s in self.statuses]
        return items

    @property
    def active(self) -> bool:
        return bool(self.workflow or self.statuses or self.created_from or self.created_to or self.q)


def _json_forms(q: str) -> list[str]:
    """How ``q`` may appear in a run's input as JSON text: as typed, and with JSON's escapes (quotes and
    backslashes; non-ASCII as ``\\uXXXX``, which is how SQLite's JSON columns store it)."""
    forms = [q, json.dumps(q, ensure_ascii=False)[1:-1], json.dumps(q)[1:-1]]
    return list(dict.fromkeys(forms))


def _parse_when(text: str, end: bool) -> dt.datetime | None:
    """An aware datetime that the database can take, or None (unparsable, or outside years 1-9999 in UTC:
    ``9999-12-31`` as an end, ``0001-01-01T00:00:00+05:00``)."""
    try:
        day = parse_date(text)
        if day is not None:
            if end:
                day += dt.timedelta(days=1)  # a date "to" includes that whole day
            when = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
        else:
            when = parse_datetime(text)
            if when is None:
                return None
            when = when if timezone.is_aware(when) else timezone.make_aware(when)
        return in_range(when)
    except (ValueError, OverflowError):
        return None


def in_range(when: dt.datetime) -> dt.datetime:
    """``when`` if it converts to UTC (as every query does); OverflowError otherwise."""
    when.astimezone(dt.UTC)
    return when


# --- keyset pagination -----------------------------------------------------------------------------------------


@dataclass
class Page:
    runs: list[Run]
    older: str | None  # cursor of the next page (older runs)
    newer: str | None  # cursor of the previous page (newer runs)
    count: int
    count_capped: bool


def encode_cursor(direction: str, run: Run) -> str:
    text = f"{direction}|{run.created_at.isoformat()}|{run.pk}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, dt.datetime, int]:
    """ValueError for anything that is not a cursor this module made."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, at, pk = text.split("|")
        when = dt.datetime.fromisoformat(at)
        if direction not in ("older", "newer") or timezone.is_naive(when) or not (pk.isascii() and pk.isdigit()):
            raise ValueError(cursor)
        if int(pk) >= 2**63:
            raise ValueError(cursor)
        return direction, in_range(when), int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def capped_count(qs: QuerySet, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """How many rows, counting at most ``cap + 1`` of them: (count, more than cap)."""
    n = qs.order_by().values("pk")[: cap + 1].count()
    return min(n, cap), n > cap


def paginate(qs: QuerySet, cursor: str | None = None, limit: int = PAGE_SIZE) -> Page:
    """One page of ``qs`` newest first, after (``older``) or before (``newer``) a cursor. ValueError: bad cursor."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    qs = qs.defer(*LIST_DEFER).select_related("workflow", "created_by")
    newest_first = ("-created_at", "-id")
    if not cursor:
        rows = list(qs.order_by(*newest_first)[: limit + 1])
        has_older, has_newer = len(rows) > limit, False
        rows = rows[:limit]
    else:
        direction, at, pk = decode_cursor(cursor)
        if direction == "older":
            rows = list(
                qs.filter(created_at__lte=at).exclude(created_at=at, pk__gte=pk).order_by(*newest_first)[: limit + 1]
            )
            has_older, has_newer = len(rows) > limit, True
            rows = rows[:limit]
        else:
            rows = list(
                qs.filter(created_at__gte=at)
                .exclude(created_at=at, pk__lte=pk)
                .order_by("created_at", "id")[: limit + 1]
            )
            if len(rows) <= limit:  # back at the top: show the real first page
                return paginate(qs, None, limit)
            has_older, has_newer = True, True
            rows = rows[:limit][::-1]
    count, capped = capped_count(qs)
    return Page(
        runs=attach_tokens(rows),
        older=encode_cursor("older", rows[-1]) if has_older and rows else None,
        newer=encode_cursor("newer", rows[0]) if has_newer and rows else None,
        count=count,
        count_capped=capped,
    )


# --- run summaries ---------------------------------------------------------------------------------------------


def run_progress(run: Run) -> float | None:
    return progress(run.workflow.name, run.status, run.cursor)


NO_TOKENS = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


def attach_tokens(runs: list[Run]) -> list[Run]:
    """Give each run ``tokens``: its agents' input/output tokens (one aggregate query for them all)."""
    found = tokens_of_runs([r.pk for r in runs]) if runs else {}
    for run in runs:
        run.tokens = found.get(run.pk, NO_TOKENS)
    return runs


def run_summary(run: Run) -> dict[str, Any]:
    """The list view of a run (the same shape the websocket's summaries have, plus a few fields; ``tokens``
    when ``attach_tokens`` gave the run them)."""
    data = {
        "id": run.pk,
        "workflow": run.workflow.name,
        "status": run.status,
        "seq": run.last_seq,
        "progress": run_progress(run),
        "idempotency_key": run.idempotency_key,
        "created_by": run.created_by.get_username() if run.created_by_id and run.created_by else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "updated_at": run.updated_at,
        "duration": run.duration,
    }
    if hasattr(run, "tokens"):
        data["tokens"] = dict(run.tokens)
    return data
