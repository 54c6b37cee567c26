"""``<prefix>/metrics``: the Prometheus scrape endpoint, opt-in (``WORKFLOWS["METRICS"]``; else 404).

A scraper sends ``Authorization: Bearer <WORKFLOWS["METRICS_TOKEN"]>`` or a staff user's personal API token; a
person may use a staff session. Without either: 401 (and for a token that is neither); a logged-in user or a
token's owner who is not staff: 403.
"""

from __future__ import annotations

import hmac

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .. import conf, metrics
from ..store import tokens


@require_GET
def scrape(request: HttpRequest) -> HttpResponse:
    if not conf.get("METRICS") or metrics.metrics() is None:
        raise Http404("metrics are off")
    token, expected = tokens.parse_header(request.headers.get("Authorization")), conf.get("METRICS_TOKEN")
    if token is not None:  # a token decides alone, as in the API: a bad one is refused even beside a session
        if not (expected and hmac.compare_digest(token.encode(), expected.encode())):
            owner = tokens.user_for(token)  # a personal API token
            if owner is None:
                return _refused(401, "invalid token")
            if not owner.is_staff:
                return _refused(403, "staff only")
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
