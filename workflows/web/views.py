"""Dashboard pages. Every page requires login; a run the user may not see answers 404.

Pages render complete HTML (they work without JavaScript); their scripts then keep them live over the websocket
and submit forms with ``fetch`` (``Accept: application/json``), which the same views answer with JSON: errors
are shown inline without a reload. Actions go through the engine, which alone changes a status.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from ..exceptions import InvalidInput, UnknownWorkflow
from ..live.payloads import error_brief
from ..store import values
from ..store.models import RUN_ACTIVE, RUN_TERMINAL, Debounce, Run, RunEvent, RunStatus
from ..store.workflow_rows import versions_in_flight
from . import approvals, drawing, launch, links, queries, schedules, services, throttle
from .forms import SchemaForm
from .permissions import can_operate
from .pools import waits_of

RECENT_RUNS = 12
LOG_LINES = 500
KEY_MAX = 255


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def visible_run(request: HttpRequest, run_id: int) -> Run:
    return get_object_or_404(Run.objects.visible_to(request.user).select_related("workflow", "created_by"), pk=run_id)


# --- home ------------------------------------------------------------------------------------------------------


@login_required
def home(request: HttpRequest) -> HttpResponse:
    stats = queries.workflow_stats(request.user)
    cards = []
    for info in queries.all_workflow_infos():
        cards.append(
            {
                "info": info,
                "stats": stats.get(info.name) or queries.empty_stats(),
                "drawing": drawing.render(info.graph, compact=True),
                "steps": sum(len(b.get("steps") or [b]) for b in info.graph.get("blocks", [])),
            }
        )
    runs = list(
        Run.objects.visible_to(request.user)
        .select_related("workflow", "created_by")
        .defer(*queries.LIST_DEFER)
        .order_by("-created_at", "-id")[:RECENT_RUNS]
    )
    return render(
        request,
        "workflows/home.html",
        {"cards": cards, "runs": _rows(runs), "has_runs": bool(runs), "live_topic": "runs"},
    )


def _rows(runs: list[Run]) -> list[dict[str, Any]]:
    if runs and not hasattr(runs[0], "tokens"):
        queries.attach_tokens(runs)
    for run in runs:
        run.error_brief = error_brief(run.error)  # the error column: type and the start of the message
    return [{"run": r, "progress": queries.run_progress(r)} for r in runs]


# --- a workflow: graph, launch form, runs ---------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def workflow_detail(request: HttpRequest, name: str) -> HttpResponse:
    info = queries.workflow_info(name)
    if info is None:
        raise Http404(f"No workflow named {name!r}")
    from_run = launch.from_run(request, name) if request.method != "POST" else None
    form = SchemaForm(
        queries.form_schema(info.graph, info.input_schema),
        prefix="input",
        **({"initial": from_run.input} if from_run else {}),
    )
    key_error = ""
    key = ""
    existing = None
    if request.method == "POST":
        if not info.launchable:
            return _formfailure(request, form, f"Workflow {name!r} is not deployed here: it cannot be launched", 409)
        try:
            throttle.check(request, "start")
        except throttle.Throttled as exc:
            return throttled(request, exc)
        form.bind(request.POST)
        key = request.POST.get("idempotency_key", "").strip()
        if len(key) > KEY_MAX:
            key_error = f"At most {KEY_MAX} characters"
        elif "\x00" in key:
            key_error = "No NUL characters"
        if not form.has_errors and not key_error:
            try:
                run, created = services.start(request.user, name, form.value, key or None)
            except InvalidInput as exc:
                form.add_errors(exc.errors, str(exc))
            except UnknownWorkflow as exc:
                return _formfailure(request, form, str(exc), 409)
            except services.ServiceError as exc:
                return _formfailure(request, form, exc.message, exc.status)
            else:
                url = reverse("workflows:run", args=[run.pk])
                if created:
                    if wants_json(request):
                        return JsonResponse({"ok": True, "run": run.pk, "redirect": url}, status=201)
                    return redirect(url)
                # the key has a run already: say so (with a link), rather than open it as if just launched
                existing = {"id": run.pk, "url": url, "message": launch.existing_message(run)}
                if wants_json(request):
                    errors = [{"field": "idempotency_key", "id": "f-idempotency_key", "msg": existing["message"]}]
                    return JsonResponse({**failure(existing["message"], errors), "existing": existing}, status=409)
                key_error = existing["message"]
        if wants_json(request):
            errors = form.error_list()
            if key_error:
                errors.append({"field": "idempotency_key", "id": "f-idempotency_key", "msg": key_error})
            return JsonResponse(failure(count_errors(errors), errors), status=400)
    filters, filter_errors = queries.RunFilters.parse(request.GET, workflow=name)
    page = _page(request, filters)
    context = {
        "info": info,
        "drawing": drawing.render(info.graph),
        "drawing_vertical": drawing.render(info.graph, vertical=True),
        "form": form,
        "from_run": from_run,
        "key": key,
        "key_error": key_error,
        "filters": filters,
        "filter_errors": filter_errors,
        "page": page,
        "rows": _rows(page.runs),
        "statuses": RunStatus.values,
        "stats": queries.workflow_stats(request.user, name=name).get(name) or queries.empty_stats(),
        "chart": {
            "durations": queries.duration_series(request.user, name),
            "days": queries.daily_counts(request.user, name),
        },
        "live_topic": f"workflow:{name}",
        "insertable": _insertable(request, filters),
        "versions": versions_in_flight(name),  # counts every user's runs: whether a version may go is global
        "schedules": schedules.page_rows(name, request.user),
        "can_change_schedules": schedules.can_change_schedules(request.user),
    }
    context["existing"] = existing
    status = 409 if existing else 400 if form.has_errors or key_error else 200
    return render(request, "workflows/workflow.html", context, status=status)


def count_errors(errors: list) -> str:
    n = len(errors)
    return "Please fix the error below." if n == 1 else f"Please fix the {n} errors below."


def failure(message: str, errors: list) -> dict[str, Any]:
    """The API's error shape (``services.error_body``), plus ``ok`` and ``message`` for the pages' scripts."""
    return {**services.error_body(message, errors), "ok": False, "message": message}


def throttled(request: HttpRequest, exc: throttle.Throttled) -> HttpResponse:
    """429 with Retry-After: JSON for the dashboard's scripts (their message shows by the form), else a page."""
    if wants_json(request):
        return throttle.json_response(exc, ok=False, message=str(exc), errors=[])
    return throttle.page_response(request, exc)


def _formfailure(request: HttpRequest, form: SchemaForm, message: str, status: int) -> HttpResponse:
    if wants_json(request):
        return JsonResponse(failure(message, []), status=status)
    messages.error(request, message)
    return redirect(request.path)


def _page(request: HttpRequest, filters: queries.RunFilters) -> queries.Page:
    qs = filters.apply(Run.objects.visible_to(request.user))
    try:
        return queries.paginate(qs, request.GET.get("cursor") or None)
    except ValueError:
        return queries.paginate(qs, None)


def _insertable(request: HttpRequest, filters: queries.RunFilters) -> bool:
    """New runs may appear at the top of the table: the first page, filtered at most by workflow."""
    return not request.GET.get("cursor") and not (
        filters.statuses or filters.created_from or filters.created_to or filters.q
    )


# --- all runs --------------------------------------------------------------------------------------------------


@login_required
def runs_list(request: HttpRequest) -> HttpResponse:
    filters, filter_errors = queries.RunFilters.parse(request.GET)
    if request.GET.get("fragment") == "count":  # the live total (runs.js asks again as runs start and end)
        count, capped = queries.capped_count(filters.apply(Run.objects.visible_to(request.user)))
        return JsonResponse({"count": count, "capped": capped, "errors": filter_errors})
    page = _page(request, filters)
    topic = f"workflow:{filters.workflow}" if filters.workflow else "runs"
    names = sorted({i.name for i in queries.all_workflow_infos()} | ({filters.workflow} if filters.workflow else set()))
    return render(
        request,
        "workflows/runs.html",
        {
            "filters": filters,
            "filter_errors": filter_errors,
            "page": page,
            "rows": _rows(page.runs),
            "statuses": RunStatus.values,
            "workflow_names": names,
            "live_topic": topic,
            "insertable": _insertable(request, filters),
            "selectable": True,
        },
    )


# --- one run ---------------------------------------------------------------------------------------------------


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = visible_run(request, run_id)
    fragment = request.GET.get("fragment")
    if fragment in ("actions", "summary", "conversation"):
        return render(request, f"workflows/run/_{fragment}.html", _run_context(request, run, full=False))
    return render(request, "workflows/run.html", _run_context(request, run, full=True))


def _run_context(request: HttpRequest, run: Run, full: bool) -> dict[str, Any]:
    graph = queries.graph_of_run(run)
    suspended = queries.resume_targets(run)
    for i, target in enumerate(suspended):
        target["form"] = SchemaForm(target["schema"], prefix="data", id_prefix=f"resume{i}")
        target["payload"] = _payload(target["step"].suspend_payload)
        target["approval"] = approvals.approval_context(run, target, i)
    events = queries.pending_events(run, graph) if run.status in RUN_ACTIVE else []
    for i, ev in enumerate(events):
        ev["form"] = SchemaForm(ev["schema"], prefix="data", id_prefix=f"event{i}")
    large = {
        "input": _large(run, "input", run.input),
        "output": _large(run, "output", run.output) if run.status == RunStatus.SUCCEEDED else None,
    }
    context: dict[str, Any] = {
        "run": run,
        "graph": graph,
        "related": queries.related_runs(run, request.user),
        "can_operate": can_operate(request.user, run),
        "is_active": run.status in RUN_ACTIVE,
        "is_terminal": run.status in RUN_TERMINAL,
        "can_retry": run.status in (RunStatus.FAILED, RunStatus.CANCELED),
        "suspended": suspended,
        "events": events,
        "restart_choices": queries.restart_choices(graph),
        "debounce": Debounce.objects.filter(run=run).first() if run.status == RunStatus.PENDING else None,
        "progress": queries.run_progress(run),
        "scheduled_by": schedules.fire_of(run),  # the schedule and due time that started it, if one did
        "large": large,  # shown on demand: run.js fetches them from the values endpoint
        "waits": waits_of(run) if run.status in RUN_ACTIVE else [],
        "pretty": {
            "input": None if large["input"] else _pretty(run.input),
            "output": _pretty(run.output) if run.status == RunStatus.SUCCEEDED and not large["output"] else None,
            "error": run.error,
            "state": _pretty(run.state) if run.state is not None else None,
        },
    }
    if full:
        steps = queries.step_rows(run)
        for st in steps:  # a restart's or retry's copies keep their original times: older than the run itself
            st["reused"] = bool(run.restarted_from_id) and st["created_at"] < run.created_at
        states = queries.node_states(graph, steps)
        logs = list(
            RunEvent.objects.filter(run=run, kind="step_log", seq__lte=run.last_seq)  # later ones come live
            .order_by("-seq")
            .values("seq", "step", "data", "at")[:LOG_LINES]
        )[::-1]
        progress: dict[str, dict[str, Any]] = {}
        running = {st["path"] for st in steps if st["status"] == "running"}
        if running:
            for e in (
                RunEvent.objects.filter(run=run, kind="step_progress", step__in=running)
                .order_by("-seq")
                .values("step", "data")[:200]
            ):
                progress.setdefault(
                    e["step"], {"fraction": e["data"].get("fraction"), "message": e["data"].get("message", "")}
                )
        blocks = [
            {
                "index": b.get("index"),
                "kind": b.get("kind"),
                "ids": [n["id"] for n in b.get("steps", [])] or [b.get("id")],
            }
            for b in graph.get("blocks", [])
        ]
        context.update(
            drawing=drawing.render(graph, states=states, interactive=True),
            drawing_vertical=drawing.render(graph, states=states, interactive=True, vertical=True),
            steps=steps,
            initial={
                "run": {
                    "id": run.pk,
                    "workflow": run.workflow.name,
                    "status": run.status,
                    "created_at": run.created_at,
                    "started_at": run.started_at,
                    "finished_at": run.finished_at,
                    "last_seq": run.last_seq,
                    "restarted_from": run.restarted_from_id,
                },
                "steps": steps,
                "logs": [
                    {"seq": e["seq"], "step": e["step"], "message": (e["data"] or {}).get("message", ""), "at": e["at"]}
                    for e in logs
                ],
                "blocks": blocks,
                "labels": drawing.labels_of(graph),  # made-up node ids ("sleep2") as people read them
                "progress": progress,
                "can_operate": context["can_operate"],
                "urls": {  # every URL the run page's script uses (run.js): none is built there
                    "api": reverse("workflows:api-run", args=[run.pk]),
                    "page": reverse("workflows:run", args=[run.pk]),
                    "step": links.url_template("workflows:api-run-step", run.pk, "{path}"),
                    "value": reverse("workflows:api-run-value", args=[run.pk, "-"]).removesuffix("-"),
                    "restart": reverse("workflows:run-action", args=[run.pk, "restart"]),
                    "history": reverse("workflows:run-history", args=[run.pk]),
                },
            },
        )
    return context


def _payload(payload: Any) -> dict[str, Any] | None:
    """A suspend payload for display: a question (its "question" or "message" key), other keys, or raw JSON."""
    if payload is None:
        return None
    if isinstance(payload, dict):
        question = payload.get("question") or payload.get("message")
        rest = {
            k: v if isinstance(v, str) else _pretty(v) for k, v in payload.items() if k not in ("question", "message")
        }
        return {"question": question if isinstance(question, str) else None, "items": rest}
    return {
        "question": payload if isinstance(payload, str) else None,
        "raw": None if isinstance(payload, str) else _pretty(payload),
    }


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _large(run: Run, where: str, value: Any) -> dict[str, Any] | None:
    """A value too large to put in the page: its size and the URL that returns it; None for a small one."""
    brief = values.brief(value, where)
    if not values.is_brief(brief):
        return None
    return {"label": _bytes(brief["bytes"]), "url": reverse("workflows:api-run-value", args=[run.pk, where])}


def _bytes(n: int) -> str:
    """Bytes for people, as run.js writes them (``fmtBytes``): "812 B", "1.0 MB"."""
    if n < 1000:
        return f"{n} B"
    value, unit = n / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}"
