"""Error pages in the dashboard's layout, and handlers a project may point its own at.

The app's pages answer 403 and 404 with ``workflows/403.html`` and ``workflows/404.html`` whatever the project's
handlers are (``styled_pages`` wraps them in urls.py). A project can use the same pages site-wide::

    handler400 = "workflows.web.errors.bad_request"
    handler403 = "workflows.web.errors.permission_denied"
    handler404 = "workflows.web.errors.page_not_found"
    handler500 = "workflows.web.errors.server_error"

``handler400``: requests Django refuses to read (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, a
form over ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` fields) answer a page that says what happened, and JSON for the API
and for the dashboard's scripts.

Django raises these while reading the request, often in the CSRF middleware before any view, so only the
project's root URLconf can catch them::

    handler400 = "workflows.web.errors.bad_request"
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, reverse

NOT_FOUND = "There is no such page here, or your account may not see it."
FORBIDDEN = "Your account may not do this."
SERVER_ERROR = "Something went wrong on our side, and it has been logged. Try again in a moment."


def describe(exception: Exception | None) -> tuple[int, str]:
    """(status, a message for people) for a refused request."""
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, f"The request is too large: at most {limit} bytes are accepted."
    if isinstance(exception, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, f"The form sent too many fields: at most {limit} are accepted."
    return 400, "The request could not be understood."


def _is_api(request: HttpRequest) -> bool:
    try:
        api = reverse("workflows:api")
    except NoReverseMatch:
        return False
    return request.path.startswith(api) or "application/json" in request.headers.get("Accept", "")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    status, message = describe(exception)
    if _is_api(request):
        return JsonResponse({"error": message, "ok": False, "message": message, "errors": []}, status=status)
    response = TemplateResponse(request, "workflows/400.html", {"message": message}, status=status)
    return response.render()


def _page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": message, "ok": False, "message": message, "errors": []}, status=status)
    context = {"message": message, "status": status, "path": request.path}
    return TemplateResponse(request, f"workflows/{status}.html", context, status=status).render()


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403: the reason the view gave (``PermissionDenied("...")`` messages are written for people)."""
    return _page(request, 403, str(exception or "") or FORBIDDEN)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 with the same words whether the page is missing or hidden from this user (no hint that a run exists)."""
    return _page(request, 404, NOT_FOUND)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 rendered without the request's context: no database query, no session, no user (either may be the
    fault), so its navigation is plain links."""
    if _is_api(request):
        return JsonResponse({"error": SERVER_ERROR, "ok": False, "message": SERVER_ERROR, "errors": []}, status=500)
    html = loader.get_template("workflows/500.html").render({"message": SERVER_ERROR, "status": 500})
    return HttpResponse(html, status=500)


def styled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``view`` answering ``Http404`` and ``PermissionDenied`` with the app's pages, not the project's."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404 as exc:
            return page_not_found(request, exc)
        except PermissionDenied as exc:
            return permission_denied(request, exc)

    return wrapper


def styled_pages(patterns: list) -> list:
    """Wrap the views of ``patterns`` (not included URLconfs such as the API's, which answer JSON) in ``styled``."""
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = styled(pattern.callback)
    return patterns
