"""Personal API tokens: created with a random secret shown once, kept as its SHA-256, checked on every request
that sends ``Authorization: Bearer <secret>`` (the API and the websocket)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.utils import timezone

from .models import ApiToken

PREFIX = "wft_"  # recognisable in logs and by secret scanners
TOUCH_EVERY = dt.timedelta(seconds=60)  # last_used_at is written at most once a minute per token


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create(user: Any, name: str, expires_at: dt.datetime | None = None) -> tuple[ApiToken, str]:
    """(the token, its secret): the secret is not stored and cannot be shown again."""
    secret = PREFIX + secrets.token_urlsafe(32)  # 256 bits: a plain hash is enough, no salt or stretching
    token = ApiToken.objects.create(
        user=user, name=name, prefix=secret[: len(PREFIX) + 6], digest=digest(secret), expires_at=expires_at
    )
    return token, secret


def parse_header(value: str | None) -> str | None:
    """The secret of an ``Authorization: Bearer <secret>`` header, else None."""
    scheme, _, secret = (value or "").partition(" ")
    return secret.strip() or None if scheme.lower() == "bearer" else None


def user_for(secret: str) -> Any | None:
    """The active owner of a valid, unexpired token (noting its use), else None."""
    if not secret or len(secret) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=digest(secret)).first()
    if token is None or token.expired or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def visible_to(user: Any):
    """The tokens a user may list and revoke: their own; every user's for staff."""
    qs = ApiToken.objects.select_related("user")
    return qs if user.is_staff else qs.filter(user=user)


def revoke(user: Any, token_id: int) -> bool:
    """Delete a token the user may revoke; False when there is none."""
    deleted, _ = visible_to(user).filter(pk=token_id).delete()
    return bool(deleted)
