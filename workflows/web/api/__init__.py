"""The JSON API under ``api/`` (below wherever the project mounts the dashboard), on django-ninja: typed request
and response schemas (``schemas``), an OpenAPI document at ``api/openapi.json`` and interactive docs at
``api/docs`` (for logged-in users and token holders only, as is everything here).

Authentication (``auth``): a personal token (``Authorization: Bearer``) or the session with its CSRF token. Every
answer is JSON in one error shape (``handling``): ``400 {"error", "errors"}``, ``401``, ``403``, ``404``, ``405``,
``409``, ``413``, ``429`` (over a rate limit, with ``Retry-After``).

Adding endpoints: write a ``ninja.Router`` in a module of its own, with typed schemas and ``url_name``s starting
with ``api-``, raise ``services.ServiceError`` (or let the engine's exceptions through) for refusals, and register
it here with ``api.add_router("", router)`` before ``urlpatterns()`` is first called::

    router = Router(tags=["schedules"])

    @router.get("/schedules/", response={200: SchedulesOut, **schemas.ERRORS}, url_name="api-schedules")
    def schedules(request): ...
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, re_path, reverse
from ninja import NinjaAPI, Router

from .. import links
from ..services import error_body
from . import handling, operations, pools, runs, schedules, schemas, workflows
from .auth import SessionAuth, TokenAuth, authenticate, login_message, login_required_json


class WorkflowsAPI(NinjaAPI):
    def get_content_type(self) -> str:
        return "application/json"  # JSON is UTF-8 (RFC 8259): no charset, as Django's JsonResponse answers


api = WorkflowsAPI(
    title="django workflows",
    version="1",
    description="Workflows, runs and the actions on them. Authenticate with `Authorization: Bearer <token>` "
    "(create one on the dashboard's Tokens page) or a session with its CSRF token.",
    urls_namespace="workflows",  # the patterns join the dashboard's namespace: reverse("workflows:api-runs")
    auth=[TokenAuth(), SessionAuth()],
    parser=handling.BoundedParser(),
    docs_decorator=login_required_json,
)
handling.install(api)

index_router = Router(tags=["index"])


@index_router.get("/", response={200: schemas.IndexOut, **schemas.ERRORS}, url_name="api")
def index(request: HttpRequest):
    """Where things are."""
    return {
        "workflows": reverse("workflows:api-workflows"),
        "runs": reverse("workflows:api-runs"),
        "openapi": reverse("workflows:openapi-json"),
        "docs": reverse("workflows:openapi-view"),
        "live": links.live_url(),
    }


api.add_router("", index_router)
api.add_router("", workflows.router)
api.add_router("", runs.router)
api.add_router("", schedules.router)
api.add_router("", pools.router)
api.add_router("", operations.router)


def _json_405(view):
    """Ninja answers a wrong method with a plain-text 405: JSON here, like every other answer; HEAD as GET."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        head = request.method == "HEAD"
        if head:  # HEAD is GET without the body, as Django's own views answer it
            request.method = "GET"
        response = view(request, *args, **kwargs)
        if head:
            request.method = "HEAD"
            response.content = b""
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            if not authenticate(request):
                return JsonResponse(error_body(login_message()), status=401)
            allow = response.get("Allow", "")
            answer = JsonResponse(error_body(f"Method {request.method} not allowed here; use {allow}"), status=405)
            answer["Allow"] = allow
            return answer
        return response

    wrapped.csrf_exempt = True  # ninja checks CSRF itself, for session requests only
    return wrapped


@login_required_json
def not_found(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body(f"No API endpoint at {request.path}; see {reverse('workflows:api')}"), status=404)


not_found.csrf_exempt = True  # type: ignore[attr-defined]


def urlpatterns() -> list[Any]:
    """The API's URL patterns, relative to ``api/`` (``workflows.urls`` includes them), ending with a JSON 404."""
    patterns = api.urls[0]
    for p in patterns:
        if isinstance(p, URLPattern):
            p.callback = _json_405(p.callback)
    return [*patterns, re_path(r"", not_found)]
