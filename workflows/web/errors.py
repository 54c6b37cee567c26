"""A ``handler400`` for projects: requests Django refuses to read (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, a
form over ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` fields) answer a page that says what happened, and JSON for the API
and for the dashboard's scripts.

Django raises these while reading the request, often in the CSRF middleware before any view, so only the
project's root URLconf can catch them::

    handler400 = "workflows.web.errors.bad_request"
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse


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
