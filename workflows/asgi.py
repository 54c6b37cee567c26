"""The whole ASGI application for a project that has none of its own: HTTP through Django, the live-updates
websocket through Channels, behind session and origin checks.

In the project's ``asgi.py``::

    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from workflows.asgi import get_asgi_application
    application = get_asgi_application()

A project with its own ``ProtocolTypeRouter`` adds ``workflows.routing.websocket_urlpatterns`` to its websocket
``URLRouter`` instead, behind ``SameOriginValidator`` (or an origin check of its own).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_tuple(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of ``scheme://host[:port]``; None for anything else."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/") or parts.query or parts.username:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _trusted(origin: tuple[str, str, int], pattern: str) -> bool:
    """``CSRF_TRUSTED_ORIGINS`` semantics: ``https://example.com``, ``https://*.example.com`` (and a port)."""
    wildcard = "://*." in pattern
    wanted = _origin_tuple(pattern.replace("://*.", "://", 1))
    if wanted is None or origin[0] != wanted[0] or origin[2] != wanted[2]:
        return False
    return origin[1] == wanted[1] or (wildcard and origin[1].endswith("." + wanted[1]))


def origin_allowed(scope: dict[str, Any]) -> bool:
    """A websocket handshake's ``Origin`` as Django's CSRF check judges a POST's: the same scheme, host and port
    as the request itself (whose host is in ``ALLOWED_HOSTS``), or one of ``CSRF_TRUSTED_ORIGINS``. A handshake
    without an ``Origin`` is refused: browsers always send one. A handshake with an API token (``Authorization:
    Bearer``, which browsers cannot send) is let through: the consumer authenticates it by the token alone."""
    from django.conf import settings
    from django.http.request import split_domain_port, validate_host

    headers = {name: value.decode("latin1") for name, value in scope.get("headers", [])}
    if headers.get(b"authorization", "").lower().startswith("bearer "):
        return True  # an API token authenticates it, not the cookies a cross-site page could make a browser send
    origin = _origin_tuple(headers.get(b"origin", ""))
    if origin is None:
        return False
    if any(_trusted(origin, pattern) for pattern in settings.CSRF_TRUSTED_ORIGINS):
        return True
    host = headers.get(b"host", "")
    domain, _ = split_domain_port(host)
    allowed_hosts = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed_hosts):
        return False
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return origin == _origin_tuple(f"{scheme}://{host}")


class SameOriginValidator:
    """ASGI middleware: refuse (HTTP 403) a websocket handshake whose origin ``origin_allowed`` rejects."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            from channels.security.websocket import WebsocketDenier

            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def get_asgi_application() -> Any:
    from django.core.asgi import get_asgi_application as django_asgi

    http = django_asgi()  # sets Django up first: the routes below import models

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter

    from .routing import websocket_urlpatterns

    return ProtocolTypeRouter(
        {
            "http": http,
            "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
