"""Websocket routes for live updates, to add to a project's ASGI router (or use ``workflows.asgi``).

The socket lives beside the dashboard: ``<prefix>ws/``, where ``<prefix>`` is wherever the project includes
``workflows.urls`` (``/ws/`` for a dashboard at ``/``), so the pages find it without configuration.
"""

from django.urls import NoReverseMatch, path, reverse

from .live.consumer import LiveConsumer


def websocket_path() -> str:
    """The socket's path without its leading slash: the dashboard's prefix + ``ws/``."""
    try:
        home = reverse("workflows:home")
    except NoReverseMatch:  # the dashboard is not mounted: the socket still has a home
        home = "/"
    return f"{home.lstrip('/')}ws/"


websocket_urlpatterns = [path(websocket_path(), LiveConsumer.as_asgi(), name="workflows-live")]
