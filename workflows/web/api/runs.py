"""``/api/runs/``: runs (filtered, keyset-paginated), one run with its steps, its journal, a step's attempts,
and the actions on a run (all through the engine: ``services``)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Query, Router, Schema, Status

from ... import engine
from ...store import values
from ...store.models import RUN_ACTIVE, Run, RunEvent, StepRun
from .. import pools, queries, services, throttle
from . import schemas as s

router = Router(tags=["runs"])
EVENTS_LIMIT = 500
ACTION = {200: s.RunDetailOut, 409: s.ErrorOut, **s.ERRORS}
LIMITED = {**ACTION, **s.THROTTLED}  # resumes and events are rate-limited per user
NEW_RUN = {201: s.RunDetailOut, 409: s.ErrorOut, **s.ERRORS, **s.THROTTLED}  # starts too


class RunListQuery(Schema):
    """Filters (as the runs page's) and the page. Dates are ``YYYY-MM-DD`` or ISO datetimes."""

    workflow: str | None = None
    status: list[str] | None = Field(None, description="repeat or comma-separate")
    created_from: str | None = None
    created_to: str | None = Field(None, description="exclusive; a date means its end")
    q: str | None = Field(None, description="text in the id, workflow, idempotency key or creator")
    limit: int = Field(queries.PAGE_SIZE, ge=1, le=queries.MAX_PAGE_SIZE)
    cursor: str | None = Field(None, description="from a page's next or previous URL")


class EventsQuery(Schema):
    after: int = Field(0, ge=0, le=2**31, description="a seq: the events after it")
    limit: int = Field(EVENTS_LIMIT, ge=1, le=5000)


def run_json(run: Run, user: Any = None, detail: bool = False) -> dict[str, Any]:
    data = queries.run_summary(run)
    data["urls"] = {"page": reverse("workflows:run", args=[run.pk]), "api": reverse("workflows:api-run", args=[run.pk])}
    if detail:
        data.update(
            version=run.version,
            input=run.input,
            output=run.output,
            error=run.error,
            traceback=run.traceback,
            state=run.state,
            last_seq=run.last_seq,
            priority=run.priority,
            waiting=pools.waits_of(run) if run.status in RUN_ACTIVE else [],
            usage=run.usage,
            steps=queries.step_rows(run),
            related=queries.related_runs(run, user),
            suspended=[
                {
                    "path": t["path"],
                    "label": t["step"].label,
                    "payload": t["step"].suspend_payload,
                    "schema": t["schema"],
                }
                for t in queries.resume_targets(run)
            ],
        )
    return data


def step_json(sr: StepRun) -> dict[str, Any]:
    fields = ("id", "path", "step_id", "block", "kind", "index", "attempt", "status", "pool", "worker", "label")
    data = {f: getattr(sr, f) for f in fields}
    data.update(
        input=_brief(sr, "input"),
        output=_brief(sr, "output"),
        error=sr.error,
        traceback=sr.traceback,
        suspend_payload=sr.suspend_payload,
        resume_data=sr.resume_data,
        created_at=sr.created_at,
        queued_at=sr.queued_at,
        started_at=sr.started_at,
        finished_at=sr.finished_at,
        due_at=sr.due_at,
        duration=sr.duration,
        child_runs=[c.pk for c in sr.child_runs.all()],
    )
    return data


def _brief(sr: StepRun, field: str) -> Any:
    """A step's input or output: the value if small, else ``{"$ref", "bytes"}`` (fetched from ``run_value``)."""
    where, ref = f"steps/{sr.pk}/{field}", getattr(sr, f"{field}_ref")
    if ref is None:
        return values.brief(getattr(sr, field), where)
    return {"$ref": where, "bytes": values.stored_size(sr.run_id, ref)}


def list_runs(request: HttpRequest, query: RunListQuery, workflow: str = "") -> dict[str, Any]:
    filters, errors = queries.RunFilters.parse(request.GET, workflow=workflow)
    if errors:
        items = [{"loc": [k], "msg": v, "type": "value_error"} for k, v in errors.items()]
        raise services.ServiceError(400, "; ".join(errors.values()), items)
    qs = filters.apply(Run.objects.visible_to(request.user))
    try:
        page = queries.paginate(qs, query.cursor or None, query.limit)
    except ValueError as exc:
        raise services.ServiceError(400, str(exc)) from None

    def link(cursor: str | None) -> str | None:
        if cursor is None:
            return None
        params = request.GET.copy()
        params["cursor"] = cursor
        return f"{request.path}?{params.urlencode()}"

    return {
        "runs": [run_json(r) for r in page.runs],
        "count": page.count,
        "count_capped": page.count_capped,
        "next": link(page.older),
        "previous": link(page.newer),
    }


@router.get("/runs/", response={200: s.RunPageOut, **s.ERRORS}, url_name="api-runs")
def runs(request: HttpRequest, filters: Query[RunListQuery]):
    """Runs you may see, newest first; follow ``next`` for older ones (a keyset cursor: no OFFSET)."""
    return list_runs(request, filters)


@router.get("/runs/{int:run_id}/", response={200: s.RunDetailOut, **s.ERRORS}, url_name="api-run", by_alias=True)
def run(request: HttpRequest, run_id: int):
    """A run with its steps (every attempt), related runs, suspended steps with their resume schemas, usage."""
    return run_json(services.visible_run(request.user, run_id), request.user, detail=True)


@router.get("/runs/{int:run_id}/events/", response={200: s.EventsOut, **s.ERRORS}, url_name="api-run-events")
def run_events(request: HttpRequest, run_id: int, params: Query[EventsQuery]):
    """The run's journal after ``after`` (a seq), at most ``limit`` events; ``more``: there are newer ones."""
    r = services.visible_run(request.user, run_id)
    rows = list(
        RunEvent.objects.filter(run=r, seq__gt=params.after)
        .order_by("seq")
        .values("seq", "kind", "step", "data", "at")[: params.limit]
    )
    return {"events": rows, "last_seq": r.last_seq, "more": bool(rows) and rows[-1]["seq"] < r.last_seq}


@router.get(
    "/runs/{int:run_id}/steps/{path:path}/", response={200: s.StepDetailOut, **s.ERRORS}, url_name="api-run-step"
)
def run_step(request: HttpRequest, run_id: int, path: str):
    """Every attempt of one step path (``fetch[3]``, ``refine%232``), with its data and log lines."""
    r = services.visible_run(request.user, run_id)
    attempts = []
    if "\x00" not in path:
        attempts = list(
            StepRun.objects.filter(run=r, path=path).prefetch_related("child_runs").order_by("block", "attempt")
        )
    if not attempts:
        raise services.ServiceError(404, f"Run {run_id} has no step {path!r}")
    logs = list(
        RunEvent.objects.filter(run=r, kind="step_log", step=path).order_by("-seq").values("seq", "data", "at")[:500]
    )[::-1]
    return {
        "path": path,
        "attempts": [step_json(a) for a in attempts],
        "logs": [{"seq": e["seq"], "message": (e["data"] or {}).get("message", ""), "at": e["at"]} for e in logs],
    }


@router.get("/runs/{int:run_id}/values/{path:where}", response={200: s.ValueOut, **s.ERRORS}, url_name="api-run-value")
def run_value(request: HttpRequest, run_id: int, where: str):
    """A large value a journal event or a step refers to (``{"$ref": where, "bytes": n}``). ``where``: ``input``,
    ``output``, ``steps/<id>/input|output|suspend_payload|resume_data``, ``events/<id>``."""
    r = services.visible_run(request.user, run_id)
    found, value = values.read(r, where) if "\x00" not in where else (False, None)
    if not found:
        raise services.ServiceError(404, f"Run {run_id} has no value {where!r}")
    return {"value": value, "bytes": values.size_of(value)}


def _detail(request: HttpRequest, run_id: int) -> dict[str, Any]:
    return run_json(services.visible_run(request.user, run_id), request.user, detail=True)


@router.post("/runs/{int:run_id}/cancel/", response=ACTION, url_name="api-run-cancel", by_alias=True)
def run_cancel(request: HttpRequest, run_id: int):
    """Cancel the run (and its running steps); ``409`` when it has finished."""
    engine.cancel(services.operable_run(request.user, run_id).pk, by=_by(request))
    return _detail(request, run_id)


@router.post(
    "/runs/{int:run_id}/resume/",
    response=LIMITED,
    url_name="api-run-resume",
    by_alias=True,
    openapi_extra=s.RETRY_AFTER,
)
def run_resume(request: HttpRequest, run_id: int, payload: s.ResumeIn):
    """Resume a suspended step with data matching its resume schema (``429`` over the resumes' rate limit)."""
    r = services.operable_run(request.user, run_id)
    throttle.check(request, "resume")
    engine.resume(r.pk, step=payload.step, label=payload.label, data=payload.data, by=_by(request))
    return _detail(request, run_id)


@router.post(
    "/runs/{int:run_id}/send-event/",
    response=LIMITED,
    url_name="api-run-send-event",
    by_alias=True,
    openapi_extra=s.RETRY_AFTER,
)
def run_send_event(request: HttpRequest, run_id: int, payload: s.EventIn):
    """Send an event to the run's ``wait_for_event`` block of that name (before or while it waits); ``400`` for
    data over ``MAX_EVENT_BYTES``, ``429`` over the events' rate limit."""
    r = services.operable_run(request.user, run_id)
    throttle.check(request, "event")
    engine.send_event(r.pk, payload.name, payload.data, by=_by(request))
    return _detail(request, run_id)


@router.post(
    "/runs/{int:run_id}/retry/", response=NEW_RUN, url_name="api-run-retry", by_alias=True, openapi_extra=s.RETRY_AFTER
)
def run_retry(request: HttpRequest, run_id: int):
    """A failed or canceled run again from where it stopped: ``201`` the new run."""
    r = services.operable_run(request.user, run_id)
    throttle.check(request, "start")
    new = engine.retry(r.pk, by=_by(request))
    return Status(201, _detail(request, new.pk))


@router.post(
    "/runs/{int:run_id}/restart/",
    response=NEW_RUN,
    url_name="api-run-restart",
    by_alias=True,
    openapi_extra=s.RETRY_AFTER,
)
def run_restart(request: HttpRequest, run_id: int, payload: s.RestartIn):
    """A new run reusing the outputs before ``from_step``'s block: ``201`` the new run."""
    r = services.operable_run(request.user, run_id)
    throttle.check(request, "start")
    new = engine.restart(r.pk, from_step=payload.from_step, input=payload.input, by=_by(request))
    return Status(201, _detail(request, new.pk))


def _by(request: HttpRequest) -> str:
    """The acting user's name, recorded in the journal event of the action (the run page's history)."""
    return request.user.get_username()
