"""Reading bodies within bounds and answering every failure in the one error shape (``services.error_body``).

Bodies are JSON objects read with ``definition.limits`` (size, depth, NaN, NUL refused: a 400, or a 413 for the
size), never ``json.loads`` unbounded. Ninja's validation errors become ``400 {"error", "errors"}`` with
pydantic's ``{loc, msg, type}`` (``loc`` without ninja's ``body``/``query``/``path`` prefix). Over a rate limit
(``web.throttle``): ``429`` with ``Retry-After``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser

from ... import conf
from ...definition import limits
from ..services import ServiceError, error_body, refusal
from ..throttle import Throttled
from .auth import login_message


class BoundedParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        if int(request.META.get("CONTENT_LENGTH") or 0) > conf.get("MAX_INPUT_BYTES"):
            raise RequestDataTooBig("body over MAX_INPUT_BYTES")  # before reading it
        if request.content_type != "application/json":
            raise ServiceError(400, "Send a JSON object with Content-Type: application/json")
        bound = conf.json_limits()
        # the object itself is one level more, so that its values may be as deep as flow.start accepts
        data = limits.loads(request.body, "body", max_depth=bound["max_depth"] + 1, max_bytes=bound["max_bytes"])
        if not isinstance(data, dict):
            raise ServiceError(400, "The body must be a JSON object")
        return data


def _loc(loc: tuple | list) -> list[str | int]:
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[2:]  # ("body", <parameter>, field…)
    elif parts and parts[0] in ("query", "path", "header", "cookie"):
        parts = parts[1:]
    return [p if isinstance(p, int) else str(p) for p in parts]


def _validation(request: HttpRequest, exc: ValidationError, api: NinjaAPI) -> HttpResponse:
    errors = [
        {"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors
    ]
    unknown = [".".join(map(str, e["loc"])) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        message = f"Unknown field(s) {', '.join(unknown)}"
    else:
        message = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in errors)
    return api.create_response(request, error_body(message, errors), status=400)


def install(api: NinjaAPI) -> None:
    """Map every exception a bad request can raise to its status, in the one error shape."""

    def respond(request: HttpRequest, status: int, message: str, errors: Any = None) -> HttpResponse:
        return api.create_response(request, error_body(message, errors), status=status)

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        found = refusal(exc.__cause__) if exc.__cause__ is not None else None  # the parser's own refusal
        if found is not None:
            return respond(request, found.status, found.message, found.errors)
        if isinstance(exc, AuthenticationError) and exc.message == "Unauthorized":
            return respond(request, 401, login_message())
        return respond(request, exc.status_code, exc.message)

    def on_refusal(request: HttpRequest, exc: Exception) -> HttpResponse:
        found = refusal(exc)
        if found is None:
            raise exc
        return respond(request, found.status, found.message, found.errors)

    def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        response = respond(request, 429, str(exc))
        response["Retry-After"] = str(exc.retry_after)
        return response

    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(Throttled, on_throttled)
    api.add_exception_handler(ValidationError, lambda r, e: _validation(r, e, api))
    for cls in refusal.handled:
        api.add_exception_handler(cls, on_refusal)
