"""Links that follow the project's URLconf: the dashboard may be mounted under any prefix, and a project may have no
login/logout pages, no admin and no django-rq dashboard.

- ``url_or_none(name, *args)``: the URL, or None where the project has no such view (instead of NoReverseMatch, a
  500 in a template); pages show such a link only when it resolves.
- ``url_template(name, "{id}")``: a URL with ``{id}`` where that argument goes, for the pages' scripts to fill in
  (``/wf/runs/{id}/``), so that no script builds a path of its own.
- ``queues_url()``: django-rq's queues dashboard, where the project mounted ``django_rq.urls`` (or its admin link).
- ``live_url()``: the path of the live-updates websocket: the dashboard's prefix + ``ws/`` (``workflows.routing``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse

# django-rq's dashboard: mounted with include("django_rq.urls"), else the admin's own page for it
QUEUES_URL_NAMES = ("django_rq:home", "admin:django_rq_home", "rq_home")
_SENTINEL = 918_273_645


def url_or_none(name: str, *args: Any, **kwargs: Any) -> str | None:
    try:
        return reverse(name, args=args or None, kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def url_template(name: str, *args: Any) -> str:
    """``reverse(name, args)`` where each argument written ``"{placeholder}"`` stays a placeholder for a script:
    ``url_template("workflows:run", "{id}")`` -> ``/wf/runs/{id}/``; ``(…"api-run-step", 7, "{path}")`` ->
    ``/wf/api/runs/7/steps/{path}/``. The script fills each in with ``encodeURIComponent(value)``.
    """
    is_hole = [isinstance(a, str) and len(a) > 2 and a[0] == "{" and a[-1] == "}" for a in args]
    fixed = " ".join(str(a) for a, hole in zip(args, is_hole, strict=True) if not hole)
    base = _SENTINEL
    while any(str(base + i) in fixed for i in range(len(args))):  # never one of the given values
        base += len(args) + 1
    values, holes = [], []
    for arg, hole in zip(args, is_hole, strict=True):
        if hole:
            sentinel = str(base + len(holes))  # digits: fits an <int:…> and a <str:…> converter alike
            holes.append((sentinel, arg))
            values.append(sentinel)
        else:
            values.append(arg)
    url = reverse(name, args=values)
    for sentinel, placeholder in reversed(holes):
        head, found, tail = url.rpartition(sentinel)  # the last occurrence: a prefix is never mistaken for it
        if not found:
            raise ValueError(f"the URL {name!r} does not show its argument {placeholder} as given")
        url = f"{head}{placeholder}{tail}"
    return url


def queues_url() -> str | None:
    for name in QUEUES_URL_NAMES:
        url = url_or_none(name)
        if url is not None:
            return url
    return None


def live_url() -> str:
    """The websocket's path: the dashboard's prefix + ``ws/`` (``/ws/`` at ``/``); ``workflows.routing`` serves it."""
    return f"{reverse('workflows:home')}ws/"


def login_url() -> str | None:
    """The project's login page (``settings.LOGIN_URL``, a path or a URL name), or None if it does not resolve."""
    try:
        return resolve_url(settings.LOGIN_URL)
    except NoReverseMatch:
        return None
