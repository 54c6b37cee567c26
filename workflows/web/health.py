"""Health endpoints for load balancers and orchestrators, unauthenticated and telling nothing else:

- ``<prefix>/health/live``: the process answers HTTP (``200 ok``).
- ``<prefix>/health/ready``: the database and Redis answer and every migration is applied (``200 ok``), else
  ``503 not ready``. Which check failed is logged, never sent: the endpoints are open to anyone.

Neither needs a login nor counts against a rate limit (nothing here writes or reveals anything), and both answer
within a few seconds even when Redis or the database hang (short timeouts).
"""

from __future__ import annotations

import logging

import redis
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .. import conf

try:  # Django 5.1+: exempt from LoginRequiredMiddleware, should a project use it
    from django.contrib.auth.decorators import login_not_required
except ImportError:  # pragma: no cover - older Django has no such middleware

    def login_not_required(view):
        return view


log = logging.getLogger(__name__)
TIMEOUT = 2.0  # seconds for Redis to connect and answer


def _answer(ok: bool) -> HttpResponse:
    body, status = ("ok", 200) if ok else ("not ready", 503)
    return HttpResponse(body, status=status, content_type="text/plain")


@login_not_required
@never_cache
@require_safe
def live(request: HttpRequest) -> HttpResponse:
    return _answer(True)


@login_not_required
@never_cache
@require_safe
def ready(request: HttpRequest) -> HttpResponse:
    for name, check in (("database", _database), ("migrations", _migrated), ("redis", _redis)):
        try:
            ok = check()
        except Exception as exc:  # any failure means not ready; the reason stays in the log
            log.warning("not ready: %s check failed: %s: %s", name, type(exc).__name__, exc)
            return _answer(False)
        if not ok:
            log.warning("not ready: %s check failed", name)
            return _answer(False)
    return _answer(True)


def _database() -> bool:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _migrated() -> bool:
    """No migration of any installed app is left to apply (what ``migrate --check`` says)."""
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    return not executor.migration_plan(executor.loader.graph.leaf_nodes())


def _redis() -> bool:
    client = redis.Redis.from_url(conf.redis_url(), socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    try:
        return bool(client.ping())
    finally:
        client.close()
