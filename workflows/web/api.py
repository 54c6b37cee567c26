"""The JSON API under ``api/`` (below wherever the project mounts the dashboard): workflows, runs, and the
actions on them (all through the engine).

Session authentication (log in first); unsafe methods need the CSRF token (``X-CSRFToken`` header, from the
``csrftoken`` cookie). Every answer is JSON: malformed requests get ``400 {"error": ...}`` (with ``"errors"``,
pydantic-style ``{loc, msg, type}``, for invalid data), never a 500; a run the user may not see is ``404``;
an action the run's state does not allow is ``409``; a body too large is ``413`` (``endpoints``: the plumbing
and the bounds on what a request may hold). Lists are keyset-paginated: follow ``next``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from .. import engine
from ..definition import registry
from ..store import values
from ..store.models import RUN_ACTIVE, Run, RunEvent, StepRun
from . import queries, throttle
from .endpoints import ApiError, endpoint, error
from .endpoints import body as _body
from .endpoints import int_param as _int_param
from .endpoints import string as _string
from .permissions import can_operate
from .pools_api import waits_of

EVENTS_LIMIT = 500


def _run(request: HttpRequest, run_id: int) -> Run:
    run = Run.objects.visible_to(request.user).select_related("workflow", "created_by").filter(pk=run_id).first()
    if run is None:
        raise ApiError(404, f"No run {run_id} that you may see")
    return run


def _operable(request: HttpRequest, run_id: int) -> Run:
    run = _run(request, run_id)
    if not can_operate(request.user, run):
        raise ApiError(403, "You may see this run but not change it")
    return run


# --- serialisation ---------------------------------------------------------------------------------------------


def workflow_json(info: queries.WorkflowInfo, stats: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    data = {
        "name": info.name,
        "description": info.description,
        "version": info.version,
        "launchable": info.launchable,
        "stats": stats,
        "urls": {
            "page": reverse("workflows:workflow", args=[info.name]),
            "api": reverse("workflows:api-workflow", args=[info.name]),
            "runs": reverse("workflows:api-workflow-runs", args=[info.name]),
        },
    }
    if detail:
        data["input_schema"] = info.input_schema
        data["output_schema"] = info.graph.get("output_schema", {})
        data["graph"] = info.graph
    return data


def run_json(run: Run, user: Any = None, detail: bool = False) -> dict[str, Any]:
    data = queries.run_summary(run)
    data["urls"] = {
        "page": reverse("workflows:run", args=[run.pk]),
        "api": reverse("workflows:api-run", args=[run.pk]),
    }
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
            waiting=waits_of(run) if run.status in RUN_ACTIVE else [],
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
    return {
        "id": sr.pk,
        "path": sr.path,
        "step_id": sr.step_id,
        "block": sr.block,
        "kind": sr.kind,
        "index": sr.index,
        "attempt": sr.attempt,
        "status": sr.status,
        "pool": sr.pool,
        "worker": sr.worker,
        "label": sr.label,
        "input": _brief(sr, "input"),
        "output": _brief(sr, "output"),
        "error": sr.error,
        "traceback": sr.traceback,
        "suspend_payload": sr.suspend_payload,
        "resume_data": sr.resume_data,
        "created_at": sr.created_at,
        "queued_at": sr.queued_at,
        "started_at": sr.started_at,
        "finished_at": sr.finished_at,
        "due_at": sr.due_at,
        "duration": sr.duration,
        "child_runs": [c.pk for c in sr.child_runs.all()],
    }


def _brief(sr: StepRun, field: str) -> Any:
    """A step's input or output: the value if small, else ``{"$ref", "bytes"}`` (fetched from ``run_value``)."""
    where, ref = f"steps/{sr.pk}/{field}", getattr(sr, f"{field}_ref")
    if ref is None:
        return values.brief(getattr(sr, field), where)
    return {"$ref": where, "bytes": values.stored_size(sr.run_id, ref)}


# --- endpoints -------------------------------------------------------------------------------------------------


@endpoint("GET")
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "workflows": reverse("workflows:api-workflows"),
            "runs": reverse("workflows:api-runs"),
            "docs": "docs/dashboard.md",
        }
    )


@endpoint("GET")
def workflows(request: HttpRequest) -> JsonResponse:
    stats = queries.workflow_stats(request.user)
    items = [workflow_json(i, stats.get(i.name) or queries.empty_stats()) for i in queries.all_workflow_infos()]
    return JsonResponse({"workflows": items})


@endpoint("GET")
def workflow(request: HttpRequest, name: str) -> JsonResponse:
    info = queries.workflow_info(name)
    if info is None:
        raise ApiError(404, f"No workflow named {name!r}")
    stats = queries.workflow_stats(request.user, name=name).get(name) or queries.empty_stats()
    return JsonResponse(workflow_json(info, stats, detail=True))


@endpoint("GET", "POST")
def workflow_runs(request: HttpRequest, name: str) -> JsonResponse:
    """GET: the workflow's runs (as ``/api/runs/?workflow=``). POST ``{"input", "idempotency_key", "priority"}``:
    start one; or ``{"input", "debounce": {"key", "seconds", "max_wait"?}}``: 202, the run its key's starts collapse
    into."""
    if request.method != "POST":
        if queries.workflow_info(name) is None:
            raise ApiError(404, f"No workflow named {name!r}")
        return _list_runs(request, workflow=name)
    throttle.check(request, "start")
    data = _body(request)
    unknown = sorted(set(data) - {"input", "idempotency_key", "priority", "debounce"})
    if unknown:
        raise ApiError(
            400, f"Unknown field(s) {', '.join(unknown)}: send input, idempotency_key or debounce, and priority"
        )
    flow = registry.get(name)
    if "debounce" in data:
        started = engine.start(
            flow, data.get("input"), user=request.user, debounce=_debounce(data["debounce"]),
            priority=data.get("priority"),
        )  # fmt: skip
        run = Run.objects.select_related("workflow", "created_by").get(pk=started.pk)  # the user's own key
        return JsonResponse(run_json(run, request.user, detail=True), status=202)
    key = _string(data, "idempotency_key")
    mine = {"workflow__name": name, "idempotency_scope": str(request.user.pk), "idempotency_key": key}
    existed = bool(key) and "\x00" not in key and Run.objects.filter(**mine).exists()  # keys are per user
    started = engine.start(
        flow, data.get("input"), user=request.user, idempotency_key=key, priority=data.get("priority")
    )
    run = Run.objects.visible_to(request.user).select_related("workflow", "created_by").filter(pk=started.pk).first()
    if run is None:
        raise ApiError(409, "A run with this idempotency key already exists (started by someone else)")
    return JsonResponse(run_json(run, request.user, detail=True), status=200 if existed else 201)


def _debounce(value: object) -> tuple:
    """``{"key", "seconds", "max_wait"?}`` as the ``debounce=`` tuple (the engine checks the values)."""
    fields = {"key", "seconds", "max_wait"}
    if not isinstance(value, dict) or not {"key", "seconds"} <= set(value) or set(value) - fields:
        raise ApiError(400, 'debounce must be {"key": str, "seconds": number} with an optional "max_wait"')
    return tuple(value[k] for k in ("key", "seconds", "max_wait") if k in value)


@endpoint("GET")
def runs(request: HttpRequest) -> JsonResponse:
    return _list_runs(request)


def _list_runs(request: HttpRequest, workflow: str = "") -> JsonResponse:
    filters, errors = queries.RunFilters.parse(request.GET, workflow=workflow)
    if errors:
        raise ApiError(
            400, "; ".join(errors.values()), [{"loc": [k], "msg": v, "type": "value_error"} for k, v in errors.items()]
        )
    limit = _int_param(request, "limit", queries.PAGE_SIZE, 1, queries.MAX_PAGE_SIZE)
    qs = filters.apply(Run.objects.visible_to(request.user))
    try:
        page = queries.paginate(qs, request.GET.get("cursor") or None, limit)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    base = request.path

    def link(cursor: str | None) -> str | None:
        if cursor is None:
            return None
        params = request.GET.copy()
        params["cursor"] = cursor
        return f"{base}?{params.urlencode()}"

    return JsonResponse(
        {
            "runs": [run_json(r) for r in page.runs],
            "count": page.count,
            "count_capped": page.count_capped,
            "next": link(page.older),
            "previous": link(page.newer),
        }
    )


@endpoint("GET")
def run(request: HttpRequest, run_id: int) -> JsonResponse:
    return JsonResponse(run_json(_run(request, run_id), request.user, detail=True))


@endpoint("GET")
def run_events(request: HttpRequest, run_id: int) -> JsonResponse:
    """The run's journal after ``after`` (a seq), at most ``limit`` events."""
    r = _run(request, run_id)
    after = _int_param(request, "after", 0, 0, 2**31)
    limit = _int_param(request, "limit", EVENTS_LIMIT, 1, 5000)
    rows = list(
        RunEvent.objects.filter(run=r, seq__gt=after)
        .order_by("seq")
        .values("seq", "kind", "step", "data", "at")[:limit]
    )
    return JsonResponse({"events": rows, "last_seq": r.last_seq, "more": bool(rows) and rows[-1]["seq"] < r.last_seq})


@endpoint("GET")
def run_step(request: HttpRequest, run_id: int, path: str) -> JsonResponse:
    """Every attempt of one step path (``fetch[3]``, ``refine#2``), with its data and log lines."""
    r = _run(request, run_id)
    if "\x00" in path:
        raise ApiError(404, f"Run {run_id} has no step {path!r}")
    attempts = list(
        StepRun.objects.filter(run=r, path=path).prefetch_related("child_runs").order_by("block", "attempt")
    )
    if not attempts:
        raise ApiError(404, f"Run {run_id} has no step {path!r}")
    logs = list(
        RunEvent.objects.filter(run=r, kind="step_log", step=path).order_by("-seq").values("seq", "data", "at")[:500]
    )[::-1]
    return JsonResponse(
        {
            "path": path,
            "attempts": [step_json(a) for a in attempts],
            "logs": [{"seq": e["seq"], "message": (e["data"] or {}).get("message", ""), "at": e["at"]} for e in logs],
        }
    )


@endpoint("GET")
def run_value(request: HttpRequest, run_id: int, where: str) -> JsonResponse:
    """A value a journal event or a step refers to (``{"$ref": where, "bytes": n}``): ``{"value", "bytes"}``.
    ``where``: ``input``, ``output``, ``steps/<id>/input|output|suspend_payload|resume_data``, ``events/<id>``."""
    r = _run(request, run_id)
    found, value = values.read(r, where)
    if not found:
        raise ApiError(404, f"Run {run_id} has no value {where!r}")
    return JsonResponse({"value": value, "bytes": values.size_of(value)})


@endpoint("POST")
def run_cancel(request: HttpRequest, run_id: int) -> JsonResponse:
    r = _operable(request, run_id)
    engine.cancel(r.pk)
    return JsonResponse(run_json(_run(request, r.pk), request.user, detail=True))


@endpoint("POST")
def run_resume(request: HttpRequest, run_id: int) -> JsonResponse:
    """``{"step": "approve", "label": null, "data": {...}}``; step may be omitted when one step is suspended."""
    r = _operable(request, run_id)
    throttle.check(request, "resume")
    data = _body(request)
    engine.resume(r.pk, step=_string(data, "step"), label=_string(data, "label"), data=data.get("data"))
    return JsonResponse(run_json(_run(request, r.pk), request.user, detail=True))


@endpoint("POST")
def run_send_event(request: HttpRequest, run_id: int) -> JsonResponse:
    """``{"name": "approved", "data": {...}}``."""
    r = _operable(request, run_id)
    throttle.check(request, "event")
    data = _body(request)
    engine.send_event(r.pk, _string(data, "name", required=True, limit=100), data.get("data"))
    return JsonResponse(run_json(_run(request, r.pk), request.user, detail=True))


@endpoint("POST")
def run_retry(request: HttpRequest, run_id: int) -> JsonResponse:
    r = _operable(request, run_id)
    throttle.check(request, "start")
    new = engine.retry(r.pk)
    return JsonResponse(run_json(_run(request, new.pk), request.user, detail=True), status=201)


@endpoint("POST")
def run_restart(request: HttpRequest, run_id: int) -> JsonResponse:
    """``{"from_step": "weather", "input": null}``: a new run reusing the outputs before that step's block."""
    r = _operable(request, run_id)
    throttle.check(request, "start")
    data = _body(request)
    new = engine.restart(r.pk, from_step=_string(data, "from_step", required=True, limit=100), input=data.get("input"))
    return JsonResponse(run_json(_run(request, new.pk), request.user, detail=True), status=201)


@endpoint("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request: HttpRequest) -> JsonResponse:
    return error(404, f"No API endpoint at {request.path}; see {reverse('workflows:api')}")
