"""The dashboard's API tokens page: create (the secret is shown once, on the answer to the POST), list and revoke
your own tokens; staff see and revoke everyone's (as in the admin)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ..store import tokens

MAX_DAYS = 3650


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request: HttpRequest) -> HttpResponse:
    created = None
    errors: dict[str, str] = {}
    name = request.POST.get("name", "").strip() if request.method == "POST" else ""
    days = request.POST.get("expires_in_days", "").strip() if request.method == "POST" else ""
    if request.method == "POST":
        if not name or len(name) > 100 or "\x00" in name:
            errors["name"] = "A name of 1 to 100 characters"
        expires_at = None
        if days:
            if not days.isascii() or not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
                errors["expires_in_days"] = f"A whole number of days from 1 to {MAX_DAYS}, or blank for never"
            else:
                expires_at = timezone.now() + dt.timedelta(days=int(days))
        if not errors:
            token, secret = tokens.create(request.user, name, expires_at)
            created = {"token": token, "secret": secret}
            name = days = ""
    context = {
        "tokens": list(tokens.visible_to(request.user).order_by("-created_at", "-id")[:500]),
        "created": created,
        "errors": errors,
        "name": name,
        "days": days,
        "all_users": request.user.is_staff,
    }
    return render(request, "workflows/tokens.html", context, status=400 if errors else 200)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    if tokens.revoke(request.user, token_id):
        messages.success(request, "Token revoked: requests with it are refused from now on.")
    else:
        messages.error(request, "No such token that you may revoke.")
    return redirect("workflows:tokens")
