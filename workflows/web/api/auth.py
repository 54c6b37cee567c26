"""Who is asking: a personal token (``Authorization: Bearer <secret>``, no CSRF: a browser never sends it on its
own) or the session (its CSRF token required on unsafe methods, in an ``X-CSRFToken`` header). Both set
``request.user``, so every endpoint sees the token's owner with the owner's permissions."""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja.errors import AuthenticationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer

from ...store import tokens
from .. import links
from ..services import error_body

SAFE = ("GET", "HEAD", "OPTIONS", "TRACE")
CSRF_FAILED = "CSRF check failed: send the csrftoken cookie's value in an X-CSRFToken header (or use a token)"


def login_message() -> str:
    login = links.login_url()
    return f"Authentication required: log in at {login} first, or send a token" if login else "Log in first"


class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``; a wrong, expired or revoked token is a 401 (never the session's user)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = tokens.user_for(token)
        if user is None:
            raise AuthenticationError(401, "Invalid, expired or revoked token")
        request.user = user
        request.workflows_token = True
        return user


class SessionAuth(APIKeyCookie):
    """The dashboard's session; unsafe methods also need its CSRF token."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request: HttpRequest) -> str | None:
        if not request.user.is_authenticated:
            return None
        if request.method not in SAFE and not csrf_ok(request):
            raise HttpError(403, CSRF_FAILED)
        return request.COOKIES.get(self.param_name, "session")

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return request.user if key else None


def csrf_ok(request: HttpRequest) -> bool:
    request.csrf_processing_done = False
    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is None


def authenticate(request: HttpRequest) -> bool:
    """For views outside ninja's operations (the OpenAPI document, its docs, the 404 fallback): a valid token or a
    session; True when the request may go on."""
    secret = tokens.parse_header(request.headers.get("Authorization"))
    if secret is not None:  # a token decides alone: a bad one is refused even beside a session
        user = tokens.user_for(secret)
        if user is None:
            return False
        request.user = user
        return True
    return request.user.is_authenticated


def login_required_json(view):
    """401 JSON for anyone not logged in and without a valid token."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not authenticate(request):
            return JsonResponse(error_body(login_message()), status=401)
        return view(request, *args, **kwargs)

    return wrapped
