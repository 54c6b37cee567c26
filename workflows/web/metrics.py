"""``<prefix>/metrics``: the Prometheus scrape endpoint, opt-in (``WORKFLOWS["METRICS"]``; else 404).

A scraper sends ``Authorization: Bearer <WORKFLOWS["METRICS_TOKEN"]>``; a person needs a staff session. Without
either: 401; a logged-in user who is not staff: 403.
"""

from __future__ import annotations

import hmac

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import conf, metrics


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


@require_GET
def scrape(request: HttpRequest) -> HttpResponse:
    if not conf.get("METRICS") or metrics.metrics() is None:
        raise Http404("metrics are off")
    token, expected = _bearer(request), conf.get("METRICS_TOKEN")
    if token is not None:
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return _refused(401, "invalid token")
    elif not request.user.is_authenticated:
        return _refused(401, "log in as staff or send the metrics token")
    elif not request.user.is_staff:
        return _refused(403, "staff only")
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


def _refused(status: int, why: str) -> HttpResponse:
    response = HttpResponse(f"{why}\n", status=status, content_type="text/plain")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="workflows metrics"'
    return response
