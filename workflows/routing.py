"""Websocket routes (served by daphne through project.asgi)."""

websocket_urlpatterns: list = []
