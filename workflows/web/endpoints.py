"""The JSON API's plumbing: the ``endpoint`` decorator (login, method and CSRF checks answered in JSON, errors
mapped to statuses) and the readers of bodies and parameters, which bound what they accept.

Every answer is JSON, whatever went wrong: ``400`` malformed or invalid (``errors``: pydantic-style
``{loc, msg, type}``), ``401`` not logged in, ``403`` CSRF or not allowed, ``404`` unknown or not visible,
``405`` wrong method, ``409`` not allowed in the run's state, ``413`` a body over ``MAX_INPUT_BYTES`` or
Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (and too many form fields: ``400``), ``429`` over a rate limit
(``Retry-After``: seconds to wait; ``throttle``).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from .. import conf
from ..definition import limits
from ..exceptions import InvalidInput, InvalidTransition, UnknownWorkflow, WorkflowsError
from . import links
from .throttle import Throttled, json_response

SAFE = ("GET", "HEAD", "OPTIONS")


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def error(status: int, message: str, errors: list | None = None) -> JsonResponse:
    body: dict[str, Any] = {"error": message}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def too_big(exc: SuspiciousOperation) -> JsonResponse:
    """Django's refusals to read a request (too big, too many fields) as a JSON answer."""
    if isinstance(exc, RequestDataTooBig):
        limit = min(conf.get("MAX_INPUT_BYTES"), settings.DATA_UPLOAD_MAX_MEMORY_SIZE or float("inf"))
        return error(413, f"Request body too large: at most {limit} bytes are accepted")
    return error(400, f"Bad request: {exc}")


def _csrf_ok(request: HttpRequest) -> bool:
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is None


def endpoint(*methods: str):
    """Login, method and CSRF checks answered in JSON; engine errors mapped to 400/404/409."""

    allowed = {*methods, *(["HEAD"] if "GET" in methods else [])}

    def decorate(fn):
        @csrf_exempt  # checked below, so that a failure answers JSON rather than an HTML page
        @functools.wraps(fn)
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if not request.user.is_authenticated:
                login = links.login_url()
                return error(401, f"Authentication required: log in at {login} first" if login else "Log in first")
            if request.method not in allowed:
                response = error(405, f"Method {request.method} not allowed here; use {', '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            try:
                if request.method not in SAFE and not _csrf_ok(request):
                    return error(403, "CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header")
                return fn(request, *args, **kwargs)
            except ApiError as exc:
                return error(exc.status, exc.message, exc.errors)
            except Throttled as exc:
                return json_response(exc)
            except InvalidInput as exc:
                return error(400, str(exc), exc.errors)
            except InvalidTransition as exc:
                return error(409, str(exc))
            except UnknownWorkflow as exc:
                return error(404, str(exc))
            except WorkflowsError as exc:
                return error(400, str(exc))
            except Http404 as exc:
                return error(404, str(exc) or "Not found")
            except SuspiciousOperation as exc:  # RequestDataTooBig, TooManyFieldsSent: Django would answer HTML
                return too_big(exc)

        return view

    return decorate


def body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object, within ``MAX_INPUT_BYTES`` and ``MAX_JSON_DEPTH`` (the object itself is one
    level more, so that its values may be as deep as ``flow.start`` accepts)."""
    if int(request.META.get("CONTENT_LENGTH") or 0) > conf.get("MAX_INPUT_BYTES"):
        raise RequestDataTooBig("body over MAX_INPUT_BYTES")  # before reading it
    if not request.body:
        return {}
    if request.content_type != "application/json":
        raise ApiError(400, "Send a JSON object with Content-Type: application/json")
    limit = conf.json_limits()
    data = limits.loads(request.body, "body", max_depth=limit["max_depth"] + 1, max_bytes=limit["max_bytes"])
    if not isinstance(data, dict):
        raise ApiError(400, "The body must be a JSON object")
    return data


def string(data: dict[str, Any], key: str, *, required: bool = False, limit: int = 255) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"{key!r} is required", [{"loc": [key], "msg": "Field required", "type": "missing"}])
        return None
    if isinstance(value, str) and "\x00" in value:
        raise ApiError(
            400,
            f"{key!r} must not contain NUL characters",
            [{"loc": [key], "msg": "Text must not contain NUL characters (\\u0000)", "type": "string_nul"}],
        )
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ApiError(
            400,
            f"{key!r} must be a non-empty string of at most {limit} characters",
            [{"loc": [key], "msg": "Input should be a non-empty string", "type": "string_type"}],
        )
    return value


def int_param(request: HttpRequest, key: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(key)
    if raw in (None, ""):
        return default
    if not re.fullmatch(r"-?[0-9]{1,18}", raw):  # ASCII digits only: int() would take "²"-like digits too
        raise ApiError(400, f"{key} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low} and {high}")
    return value
