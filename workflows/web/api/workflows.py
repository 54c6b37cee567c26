"""``/api/workflows/``: the workflows with their stats, one with its graph and schemas, and starting a run."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Query, Router, Status

from .. import queries, services, throttle
from . import schemas as s
from .runs import RunListQuery, list_runs, run_json

router = Router(tags=["workflows"])


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


def _info(name: str) -> queries.WorkflowInfo:
    info = queries.workflow_info(name)
    if info is None:
        raise services.ServiceError(404, f"No workflow named {name!r}")
    return info


@router.get("/workflows/", response={200: s.WorkflowListOut, **s.ERRORS}, url_name="api-workflows")
def workflows(request: HttpRequest):
    """Every workflow registered here, with its stats over the runs you may see."""
    stats = queries.workflow_stats(request.user)
    items = [workflow_json(i, stats.get(i.name) or queries.empty_stats()) for i in queries.all_workflow_infos()]
    return {"workflows": items}


@router.get("/workflows/{name}/", response={200: s.WorkflowDetailOut, **s.ERRORS}, url_name="api-workflow")
def workflow(request: HttpRequest, name: str):
    """One workflow: its graph (``Graph.to_json()``), input and output schemas, stats."""
    info = _info(name)
    stats = queries.workflow_stats(request.user, name=name).get(name) or queries.empty_stats()
    return workflow_json(info, stats, detail=True)


@router.get("/workflows/{name}/runs/", response={200: s.RunPageOut, **s.ERRORS}, url_name="api-workflow-runs")
def workflow_runs(request: HttpRequest, name: str, filters: Query[RunListQuery]):
    """The workflow's runs, as ``/api/runs/?workflow=<name>``."""
    _info(name)
    return list_runs(request, filters, workflow=name)


@router.post(
    "/workflows/{name}/runs/",
    response={
        200: s.RunDetailOut,
        201: s.RunDetailOut,
        202: s.RunDetailOut,
        409: s.ErrorOut,
        **s.ERRORS,
        **s.THROTTLED,
    },
    by_alias=True,
    openapi_extra=s.RETRY_AFTER,
)
def start_run(request: HttpRequest, name: str, payload: s.StartIn):
    """Start a run: ``201`` the new run, ``200`` your own run with that ``idempotency_key``, ``400`` with the
    input's errors (nothing created). With ``debounce``: ``202`` the pending run your starts with that key
    collapse into. ``429`` over the starts' rate limit."""
    throttle.check(request, "start")
    if payload.debounce is not None:
        if payload.idempotency_key is not None:
            raise services.ServiceError(400, "Send either an idempotency_key or a debounce, not both")
        d = payload.debounce
        window = (d.key, d.seconds) if d.max_wait is None else (d.key, d.seconds, d.max_wait)
        run = services.start_debounced(request.user, name, payload.input, window, payload.priority)
        return Status(202, run_json(run, request.user, detail=True))
    run, created = services.start(request.user, name, payload.input, payload.idempotency_key, payload.priority)
    return Status(201 if created else 200, run_json(run, request.user, detail=True))
