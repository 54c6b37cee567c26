"""The run page's event history (like Temporal's): every journal event of a run in seq order, a page at a time.

``GET runs/<id>/history/?before=<seq>&limit=<n>&kind=<kind>&step=<path>`` answers the events before ``before``
(default: all), newest page first but each page in order, with ``at`` and ``t`` (seconds since the run was
created), the acting user (``by``: who canceled, resumed, sent an event, restarted; the creator for
``run_created``) and ``earlier`` (whether older events remain). The page loads the latest page, takes new events
from the websocket, and asks for earlier ones when "Load earlier" is pressed: the history stays bounded for long
runs. Run-page permission: a run the user may not see answers 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from ..store.models import Run, RunEvent
from .services import MAX_ID

PAGE = 200
MAX_PAGE = 1000


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    """A query parameter as an int in [low, high]; ValueError (a 400) for anything else."""
    if raw in (None, ""):
        return default
    value = int(raw)
    if not low <= value <= high:
        raise ValueError(raw)
    return value


def event_rows(run: Run, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal rows as the history shows them: times relative to the run's creation, and who acted."""
    creator = run.created_by.get_username() if run.created_by_id else None
    out = []
    for e in events:
        data = e["data"] or {}
        by = data.get("by") if isinstance(data, dict) else None
        if e["kind"] == "run_created" and not by:
            by = creator
        out.append(
            {
                "seq": e["seq"],
                "kind": e["kind"],
                "step": e["step"],
                "data": data,
                "at": e["at"],
                "t": (e["at"] - run.created_at).total_seconds(),
                "by": by,
            }
        )
    return out


@login_required
@require_GET
def run_history(request: HttpRequest, run_id: int) -> JsonResponse:
    run = None
    if 0 < run_id <= MAX_ID:
        run = Run.objects.visible_to(request.user).select_related("created_by").filter(pk=run_id).first()
    if run is None:
        return JsonResponse({"error": f"No run {run_id} that you may see"}, status=404)
    try:
        before = _int(request.GET.get("before"), run.last_seq + 1, 1, MAX_ID)
        limit = _int(request.GET.get("limit"), PAGE, 1, MAX_PAGE)
    except ValueError:
        return JsonResponse({"error": "before and limit must be positive integers (limit at most 1000)"}, status=400)
    qs = RunEvent.objects.filter(run=run, seq__lt=before)
    for param in ("kind", "step"):
        value = request.GET.get(param)
        if value:
            if "\x00" in value:
                return JsonResponse({"error": f"Bad {param}"}, status=400)
            qs = qs.filter(**{param: value})
    rows = list(qs.order_by("-seq").values("seq", "kind", "step", "data", "at")[: limit + 1])
    earlier = len(rows) > limit
    rows = rows[:limit][::-1]
    return JsonResponse(
        {"events": event_rows(run, rows), "earlier": earlier, "last_seq": run.last_seq, "created_at": run.created_at}
    )
