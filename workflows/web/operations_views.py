"""The dashboard's operations page (``operations.snapshot``): pools with their controls, RQ queues, workers and
recovery loops from their heartbeats, schedules' next fires, versions with runs in flight. ``operations.js``
fetches ``?part=live`` (the same sections, rendered by the same template) every few seconds and swaps them in;
the pools' table is refreshed by ``pools.js`` as on the pools page, so a limit being typed is not lost."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.views.decorators.http import require_safe

from . import operations
from .pools import can_control


@login_required
@require_safe
def operations_page(request: HttpRequest) -> HttpResponse:
    if not operations.can_view(request.user):
        return HttpResponseForbidden("The operations page needs staff status or the workflows.view_all_runs permission")
    context = {"ops": operations.snapshot(), "can_control": can_control(request.user), "back_to": "operations"}
    if request.GET.get("part") == "live":
        return render(request, "workflows/_operations_live.html", context)
    context["pools"] = context["ops"]["pools"]
    return render(request, "workflows/operations.html", context)
