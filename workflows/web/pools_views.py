"""The dashboard's pools page: each pool's slots in use and limit, waiting steps, rate usage and pause state
(refreshed from ``api/pools/`` every few seconds by ``pools.js``), with forms to change a limit and to pause or
resume a pool (staff or ``workflows.change_pool``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from .. import conf
from ..engine import pool_control
from ..exceptions import InvalidInput
from .pools import can_control


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def pools(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _change(request)
    context = {"pools": pool_control.states(), "can_control": can_control(request.user)}
    return render(request, "workflows/pools.html", context)


def _change(request: HttpRequest) -> HttpResponse:
    if not can_control(request.user):
        raise PermissionDenied("Changing a pool needs staff status or the workflows.change_pool permission")
    name, action = request.POST.get("pool", ""), request.POST.get("action", "")
    try:
        if name not in conf.pools():
            raise InvalidInput(f"Unknown pool {name!r}")
        if action == "pause":
            pool_control.pause(name)
        elif action == "resume":
            pool_control.resume(name)
        elif action == "limit":
            raw = request.POST.get("max_parallel", "").strip()
            if raw and not raw.isdigit():
                raise InvalidInput("max_parallel must be a whole number (empty: the settings' value)")
            pool_control.set_limit(name, int(raw) if raw else None)
        else:
            raise InvalidInput(f"Unknown action {action!r}")
    except InvalidInput as exc:
        return render(
            request, "workflows/pools.html",
            {"pools": pool_control.states(), "can_control": True, "error": str(exc)}, status=400,
        )  # fmt: skip
    return redirect("workflows:operations" if request.POST.get("next") == "operations" else "workflows:pools")
