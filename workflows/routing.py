"""Websocket routes (served by daphne through project.asgi, behind the session auth and origin checks)."""

from django.urls import path

from .consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/", LiveConsumer.as_asgi()),
]
