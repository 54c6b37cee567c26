"""Websocket routes for live updates, to add to a project's ASGI router (or use ``workflows.asgi``).

The socket lives beside the dashboard: ``<prefix>ws/``, where ``<prefix>`` is wherever the project includes
``workflows.urls`` (``/ws/`` for a dashboard at ``/``), so the pages find it without configuration.
"""

from django.urls import NoReverseMatch, path

from .live.consumer import LiveConsumer
from .web.links import live_url


def websocket_path() -> str:
    """The socket's path without its leading slash: the one the pages are given (``web.links.live_url``)."""
    try:
        return live_url().lstrip("/")
    except NoReverseMatch:  # the dashboard is not mounted: the socket still has a home
        return "ws/"


websocket_urlpatterns = [path(websocket_path(), LiveConsumer.as_asgi(), name="workflows-live")]
