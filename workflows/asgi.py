"""The whole ASGI application for a project that has none of its own: HTTP through Django, the live-updates
websocket through Channels, behind session (and origin) checks.

In the project's ``asgi.py``::

    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from workflows.asgi import get_asgi_application
    application = get_asgi_application()

A project with its own ``ProtocolTypeRouter`` adds ``workflows.routing.websocket_urlpatterns`` to its websocket
``URLRouter`` instead.
"""

from __future__ import annotations

from typing import Any


def get_asgi_application() -> Any:
    from django.core.asgi import get_asgi_application as django_asgi

    http = django_asgi()  # sets Django up first: the routes below import models

    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter
    from channels.security.websocket import AllowedHostsOriginValidator

    from .routing import websocket_urlpatterns

    return ProtocolTypeRouter(
        {
            "http": http,
            "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
