"""The ``workflows`` command (``main``): the JSON API and the live websocket from a shell, with an API token."""

from .main import main

__all__ = ["main"]
