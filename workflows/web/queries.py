"""Read-side queries shared by the dashboard pages and the JSON API.

Run lists use keyset pagination on ``(created_at, id)`` and a capped count, so that a page costs the same with
100 runs or 100,000: no ``OFFSET``, no full ``COUNT(*)``. Every query starts from ``Run.objects.visible_to``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ..definition import registry
from ..exceptions import UnknownWorkflow
from ..live.payloads import progress
from ..store.models import RUN_ACTIVE, RUN_TERMINAL, Run, RunStatus, StepRun, StepStatus, WorkflowVersion
from ..store.models import Workflow as WorkflowRow
from .drawing import node_id_of

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
COUNT_CAP = 10_000
LIST_DEFER = ("input", "output", "error", "traceback", "state")
STEP_FIELDS = (
    "id", "block", "path", "step_id", "kind", "index", "attempt", "status", "pool", "label", "worker",
    "created_at", "queued_at", "started_at", "finished_at", "due_at", "error",
)  # fmt: skip


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
                errors[name] = f"{name} must be a date (YYYY-MM-DD) or an ISO datetime"
            else:
                setattr(f, name, when)
        f.q = str(params.get("q", "") or "").strip()[:255]
        f.raw = {
            k: str(params.get(k))
            for k in ("workflow", "created_from", "created_to", "q")
            if params.get(k) and k not in errors
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
            qs = qs.filter(cond)
        return qs

    def params(self) -> list[tuple[str, str]]:
        """Query parameters reproducing these filters (for pagination links)."""
        items = [(k, v) for k, v in self.raw.items()]
        items += [("status", s) for s in self.statuses]
        return items

    @property
    def active(self) -> bool:
        return bool(self.workflow or self.statuses or self.created_from or self.created_to or self.q)


def _parse_when(text: str, end: bool) -> dt.datetime | None:
    try:
        day = parse_date(text)
        if day is not None:
            if end:
                day += dt.timedelta(days=1)  # a date "to" includes that whole day
            return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
        when = parse_datetime(text)
    except ValueError:
        return None
    if when is None:
        return None
    return when if timezone.is_aware(when) else timezone.make_aware(when)


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
        if direction not in ("older", "newer") or timezone.is_naive(when):
            raise ValueError(cursor)
        return direction, when, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
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
        runs=rows,
        older=encode_cursor("older", rows[-1]) if has_older and rows else None,
        newer=encode_cursor("newer", rows[0]) if has_newer and rows else None,
        count=count,
        count_capped=capped,
    )


# --- run summaries ---------------------------------------------------------------------------------------------


def run_progress(run: Run) -> float | None:
    return progress(run.workflow.name, run.status, run.cursor)


def run_summary(run: Run) -> dict[str, Any]:
    """The list view of a run (the same shape the websocket's summaries have, plus a few fields)."""
    return {
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


# --- workflow statistics ---------------------------------------------------------------------------------------


def workflow_stats(user: Any, now: dt.datetime | None = None, name: str | None = None) -> dict[str, dict[str, Any]]:
    """Per workflow name (only ``name`` if given), over the runs ``user`` may see: runs and outcomes in the last
    24 h, p50 duration of the succeeded ones, and the last run."""
    now = now or timezone.now()
    visible = Run.objects.visible_to(user)
    workflows = WorkflowRow.objects.all()
    if name is not None:
        visible, workflows = visible.filter(workflow__name=name), workflows.filter(name=name)
    recent = visible.filter(created_at__gte=now - dt.timedelta(hours=24))
    stats: dict[str, dict[str, Any]] = {}
    rows = (
        recent.order_by()
        .values("workflow__name")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=RunStatus.FAILED)),
            active=Count("id", filter=Q(status__in=RUN_ACTIVE)),
        )
    )
    for r in rows:
        decided = r["succeeded"] + r["failed"]
        stats[r["workflow__name"]] = {
            "runs_24h": r["total"],
            "succeeded_24h": r["succeeded"],
            "failed_24h": r["failed"],
            "active": r["active"],
            "success_rate": round(r["succeeded"] / decided, 4) if decided else None,
            "p50_seconds": None,
            "last_run": None,
        }
    for each, s in stats.items():
        if s["succeeded_24h"]:
            durations = (
                recent.filter(workflow__name=each, status=RunStatus.SUCCEEDED, started_at__isnull=False)
                .annotate(took=F("finished_at") - F("started_at"))
                .order_by("took")
                .values_list("took", flat=True)
            )
            middle = list(durations[(s["succeeded_24h"] - 1) // 2 :][:1])
            if middle and middle[0] is not None:
                s["p50_seconds"] = round(middle[0].total_seconds(), 3)
    last = visible.filter(workflow=OuterRef("pk")).order_by("-created_at", "-id")
    latest = (
        workflows.annotate(
            last_id=Subquery(last.values("id")[:1]),
            last_status=Subquery(last.values("status")[:1]),
            last_at=Subquery(last.values("created_at")[:1]),
        )
        .filter(last_id__isnull=False)
        .values("name", "last_id", "last_status", "last_at")
    )
    for r in latest:
        s = stats.setdefault(r["name"], empty_stats())
        s["last_run"] = {"id": r["last_id"], "status": r["last_status"], "created_at": r["last_at"]}
    return stats


def empty_stats() -> dict[str, Any]:
    return {
        "runs_24h": 0,
        "succeeded_24h": 0,
        "failed_24h": 0,
        "active": 0,
        "success_rate": None,
        "p50_seconds": None,
        "last_run": None,
    }


def duration_series(user: Any, name: str, limit: int = 80) -> list[dict[str, Any]]:
    """The last ``limit`` finished runs of a workflow, oldest first: id, status, created_at, duration."""
    rows = list(
        Run.objects.visible_to(user)
        .filter(workflow__name=name, status__in=RUN_TERMINAL)
        .order_by("-created_at", "-id")
        .values("id", "status", "created_at", "started_at", "finished_at")[:limit]
    )
    out = []
    for r in reversed(rows):
        took = (r["finished_at"] - r["started_at"]).total_seconds() if r["started_at"] and r["finished_at"] else None
        out.append({"id": r["id"], "status": r["status"], "created_at": r["created_at"], "duration": took})
    return out


def daily_counts(user: Any, name: str, days: int = 14, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Runs per day (UTC) over the last ``days`` days, by outcome, oldest first (days without runs included)."""
    today = timezone.localdate(now or timezone.now())
    first = today - dt.timedelta(days=days - 1)
    bounds = [timezone.make_aware(dt.datetime.combine(first + dt.timedelta(days=i), dt.time.min)) for i in range(days)]
    # the day as an index by range comparisons on created_at (its index): a date function per row (TruncDate)
    # costs SQLite a Python call per run, 145 ms for 20,000 runs
    day = Case(*(When(created_at__gte=b, then=Value(i)) for i, b in reversed(list(enumerate(bounds)))))
    rows = (
        Run.objects.visible_to(user)
        .filter(workflow__name=name, created_at__gte=bounds[0])
        .annotate(day=day)
        .order_by()
        .values("day")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status=RunStatus.FAILED)),
            canceled=Count("id", filter=Q(status=RunStatus.CANCELED)),
        )
    )
    by_day = {r["day"]: r for r in rows}
    return [
        {
            "day": (first + dt.timedelta(days=i)).isoformat(),
            **{k: by_day.get(i, {}).get(k, 0) for k in ("total", "succeeded", "failed", "canceled")},
        }
        for i in range(days)
    ]


# --- one run ---------------------------------------------------------------------------------------------------


def graph_of_run(run: Run) -> dict[str, Any]:
    """The graph of the version the run started with (kept in WorkflowVersion), else the workflow's current one."""
    graph = (
        WorkflowVersion.objects.filter(workflow_id=run.workflow_id, version=run.version)
        .values_list("graph", flat=True)
        .first()
    )
    return graph or run.workflow.graph or {}


def step_rows(run: Run) -> list[dict[str, Any]]:
    """Every step attempt of the run (without the potentially large input/output/traceback), oldest first."""
    return list(StepRun.objects.filter(run=run).order_by("pk").values(*STEP_FIELDS))


FOREACH_PRECEDENCE = ("failed", "running", "suspended", "waiting", "queued", "pending", "canceled")


def node_states(graph: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per graph node (``"<block>:<node id>"``): its status, a loop's iteration, a foreach's done/total.

    The run page's script computes the same from the journal as events arrive (static/workflows/run.js).
    """
    kinds = {b.get("index"): b.get("kind") for b in graph.get("blocks", [])}
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for s in steps:
        key = (s["block"], s["path"])
        if key not in latest or s["attempt"] >= latest[key]["attempt"]:
            latest[key] = s
    grouped: dict[str, list[dict[str, Any]]] = {}
    for (block, path), s in latest.items():
        grouped.setdefault(f"{block}:{node_id_of(path)}", []).append(s)
    states = {}
    for key, rows in grouped.items():
        kind = kinds.get(rows[0]["block"])
        if kind == "foreach":
            statuses = {r["status"] for r in rows}
            done = sum(r["status"] == StepStatus.SUCCEEDED for r in rows)
            if statuses <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
                status = StepStatus.SUCCEEDED
            else:
                status = next(s for s in FOREACH_PRECEDENCE if s in statuses)
            states[key] = {"status": status, "done": done, "total": len(rows)}
        elif kind == "loop":
            last = max(rows, key=lambda r: (r["index"] or 0, r["attempt"]))
            states[key] = {"status": last["status"], "iteration": last["index"] or 1}
        else:
            states[key] = {"status": rows[-1]["status"], "attempt": rows[-1]["attempt"]}
    return states


def related_runs(run: Run, user: Any) -> dict[str, Any]:
    """Parent, children (nested workflows), the run this one restarted and its restarts, as the user may see them."""
    visible = Run.objects.visible_to(user)
    parent = None
    if run.parent_step_id:
        row = (
            StepRun.objects.filter(pk=run.parent_step_id)
            .values("run_id", "path", "run__workflow__name", "run__status")
            .first()
        )
        if row and visible.filter(pk=row["run_id"]).exists():
            parent = {
                "id": row["run_id"],
                "step": row["path"],
                "workflow": row["run__workflow__name"],
                "status": row["run__status"],
            }
    children = [
        {"id": c["id"], "workflow": c["workflow__name"], "status": c["status"], "step": c["parent_step__path"]}
        for c in visible.filter(parent_step__run=run)
        .order_by("pk")
        .values("id", "workflow__name", "status", "parent_step__path")
    ]
    restarted_from = None
    if run.restarted_from_id:
        restarted_from = visible.filter(pk=run.restarted_from_id).values("id", "status").first()
    restarts = list(visible.filter(restarted_from=run).order_by("pk").values("id", "status"))
    return {"parent": parent, "children": children, "restarted_from": restarted_from, "restarts": restarts}


def resume_targets(run: Run, prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """The suspended steps a resume can reach: ``{"path", "step", "schema"}``, through nested workflows
    (``path`` ``"child.step"``; ``step`` is the suspended leaf StepRun, ``schema`` its resume JSON Schema)."""
    out = []
    graph = None
    for sr in run.steps.filter(status=StepStatus.SUSPENDED).order_by("pk"):
        if sr.kind == "workflow":
            child = Run.objects.filter(parent_step=sr).order_by("-pk").first()
            if child is not None and depth < 10:
                out += resume_targets(child, f"{prefix}{sr.path}.", depth + 1)
            continue
        graph = graph if graph is not None else graph_of_run(run)
        out.append({"path": prefix + sr.path, "step": sr, "schema": resume_schema(graph, sr)})
    return out


def pending_events(run: Run, graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's ``wait_for_event`` blocks not consumed yet (events may be sent before the run gets there)."""
    consumed = set(run.steps.filter(kind="event", status=StepStatus.SUCCEEDED).values_list("path", flat=True))
    waiting = set(run.steps.filter(kind="event", status=StepStatus.WAITING).values_list("path", flat=True))
    out = []
    for block in graph.get("blocks", []):
        if block.get("kind") == "event" and block.get("id") not in consumed:
            out.append(
                {
                    "id": block.get("id"),
                    "event": block.get("event"),
                    "schema": block.get("output_schema") or {},
                    "waiting": block.get("id") in waiting,
                    "timeout": block.get("timeout"),
                }
            )
    return out


def resume_schema(graph: dict[str, Any], step: StepRun) -> dict[str, Any] | None:
    """The JSON Schema a suspended step's resume data must match (None: any JSON)."""
    for block in graph.get("blocks", []):
        if block.get("index") == step.block:
            for node in block.get("steps", []):
                if node.get("id") == step.step_id:
                    return node.get("resume_schema")
    return None


def restart_choices(graph: dict[str, Any]) -> list[tuple[str, str]]:
    """(step id, label) of every block a run can be restarted from, in order."""
    out = []
    seen = set()
    for block in graph.get("blocks", []):
        ids = [n.get("id") for n in block.get("steps", [])] or [block.get("id")]
        for node_id in ids:
            if node_id and node_id not in seen:
                seen.add(node_id)
                out.append((node_id, f"{block.get('index', 0) + 1}. {node_id} ({block.get('kind', 'step')})"))
    return out


# --- workflows -------------------------------------------------------------------------------------------------


@dataclass
class WorkflowInfo:
    """A workflow as the dashboard shows it: from the registry (launchable) or only its stored row."""

    name: str
    description: str
    version: str
    graph: dict[str, Any]
    input_schema: dict[str, Any]
    launchable: bool


def workflow_info(name: str) -> WorkflowInfo | None:
    try:
        flow = registry.get(name)
    except UnknownWorkflow:
        row = WorkflowRow.objects.filter(name=name).first()
        if row is None:
            return None
        return WorkflowInfo(row.name, row.description, row.version, row.graph, row.input_schema or {}, False)
    return _info(flow)


def all_workflow_infos() -> list[WorkflowInfo]:
    return [_info(flow) for flow in registry.all_workflows()]


_graphs: dict[tuple[str, str], dict[str, Any]] = {}


def _info(flow: Any) -> WorkflowInfo:
    key = (flow.name, flow.version)
    graph = _graphs.get(key)
    if graph is None:  # to_json() reads condition sources and builds schemas: once per version and process
        graph = _graphs[key] = flow.graph.to_json()
    return WorkflowInfo(flow.name, flow.description, flow.version, graph, graph["input_schema"], True)
