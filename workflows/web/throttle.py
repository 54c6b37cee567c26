"""Per-user rate limits on what users ask of the engine over HTTP: run starts (launch, retry, restart), events
and resumes (``WORKFLOWS["RATE_LIMITS"]``).

Counted with the ``limits`` library (a sliding-window counter) in the app's Redis, so every web process shares
the count. Only the web layer calls ``check``: ``flow.start`` and the engine, called by trusted code (steps,
schedules, scripts), are not limited. If Redis cannot be reached the request is let through (logged): a
throttle must not take the dashboard down with it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from functools import cache
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from .. import conf

log = logging.getLogger(__name__)

Kind = Literal["start", "event", "resume"]
WORDS = {"start": "run starts", "event": "events sent", "resume": "resumes"}


class Throttled(Exception):
    """The user's ``kind`` requests are over their rate limit; ``retry_after`` seconds until one is allowed."""

    def __init__(self, kind: Kind, limit: RateLimitItem, retry_after: int) -> None:
        self.kind, self.limit, self.retry_after = kind, limit, retry_after
        super().__init__(
            f"Too many {WORDS[kind]}: at most {limit.amount} per {_per(limit)}. Try again in {retry_after} s."
        )


def _per(limit: RateLimitItem) -> str:
    unit = limit.GRANULARITY.name
    return unit if limit.multiples == 1 else f"{limit.multiples} {unit}s"


def _storage_url(url: str) -> str:
    """``limits`` names Redis over a unix socket ``redis+unix://``; redis-py's ``unix://``."""
    return "redis+unix://" + url.removeprefix("unix://") if url.startswith("unix://") else url


@cache
def _limiter(url: str, pid: int) -> SlidingWindowCounterRateLimiter:
    storage = storage_from_string(_storage_url(url), socket_timeout=2, socket_connect_timeout=2)
    return SlidingWindowCounterRateLimiter(storage)


def check(request: HttpRequest, kind: Kind) -> None:
    """Count one ``kind`` request of the request's user; raise ``Throttled`` when over the limit."""
    spec = getattr(conf.get("RATE_LIMITS"), kind)
    if not spec:
        return  # this kind is not limited
    limit = parse(spec)
    keys = ("workflows", kind, str(request.user.pk))
    try:
        limiter = _limiter(conf.redis_url(), os.getpid())
        if limiter.hit(limit, *keys):
            return
        reset = limiter.get_window_stats(limit, *keys).reset_time
    except Exception as exc:  # noqa: BLE001 - see the module's docstring
        log.warning("rate limits: counting in Redis failed (%s: %s); letting the request through", type(exc), exc)
        return
    raise Throttled(kind, limit, max(1, math.ceil(reset - time.time())))


def json_response(exc: Throttled, **extra: Any) -> JsonResponse:
    """429 with ``Retry-After`` and ``{"error": ...}`` (plus ``extra``: the dashboard's scripts read ``message``)."""
    response = JsonResponse({"error": str(exc), **extra}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


def page_response(request: HttpRequest, exc: Throttled) -> HttpResponse:
    """429 with ``Retry-After`` and a page that says what happened, for a form posted without the scripts."""
    response = TemplateResponse(request, "workflows/429.html", {"message": str(exc)}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response.render()
