"""System checks: every setting the app reads and every piece a project must add, each with its fix."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf

REQUIRED_APPS = {
    "django_rq": "the RQ queues the steps run on (and its queues dashboard, wherever django_rq.urls is mounted)",
    "django.contrib.auth": "runs belong to users; every page requires login",
    "django.contrib.contenttypes": "needed by django.contrib.auth",
    "django.contrib.sessions": "the dashboard's login",
    "django.contrib.messages": "the dashboard's notices",
}
ADD_TO_SETTINGS = "Add it to INSTALLED_APPS (README: 'Add it to your project')."
# the tag of the app's own checks: worker processes run only these (``workflows_worker``), not the URL and admin
# checks, which would import every view, the API and the admin into a process that serves none of them
TAG = "workflows"


@register(TAG)
def check_installation(app_configs: Any, **kwargs: Any) -> list:
    return [
        Error(f"{name!r} is not in INSTALLED_APPS: {why}", hint=ADD_TO_SETTINGS, id="workflows.E010")
        for name, why in REQUIRED_APPS.items()
        if not apps.is_installed(name)
    ]


@register(TAG)
def check_settings(app_configs: Any, **kwargs: Any) -> list:
    try:
        cfg = conf.settings()
    except ImproperlyConfigured as exc:
        return [
            Error(str(exc), hint="Fix these keys; README 'Settings' lists each with its type.", id="workflows.E001")
        ]
    errors = []
    if cfg.DEFAULT_POOL not in cfg.POOLS:
        errors.append(
            Error(
                f"WORKFLOWS['DEFAULT_POOL'] {cfg.DEFAULT_POOL!r} is not in WORKFLOWS['POOLS'] ({', '.join(cfg.POOLS)})",
                hint=f"Add a pool named {cfg.DEFAULT_POOL!r} to WORKFLOWS['POOLS'] or name an existing one.",
                id="workflows.E002",
            )
        )
    rq_queues = getattr(settings, "RQ_QUEUES", {})
    for name in cfg.POOLS:
        queue = conf.queue_of(name)
        if queue not in rq_queues:
            errors.append(
                Error(
                    f"Pool {name!r} uses the RQ queue {queue!r}, which is missing from RQ_QUEUES",
                    hint=f"Add {queue!r} to RQ_QUEUES, or remove RQ_QUEUES to have it derived from the Redis URL.",
                    id="workflows.E003",
                )
            )
    errors += _check_redis_url()
    errors += _check_workflow_pools()
    try:
        import_string(cfg.WORKER_CLASS)
    except ImportError as exc:
        errors.append(
            Error(
                f"WORKFLOWS['WORKER_CLASS'] {cfg.WORKER_CLASS!r} cannot be imported: {exc}",
                hint="Use 'rq.worker.Worker' (forking) or 'rq.worker.SimpleWorker' (in-process), or your subclass.",
                id="workflows.E005",
            )
        )
    return errors


def _check_workflow_pools() -> list:
    """Every committed workflow's steps name pools that exist (settings may have changed since they were built)."""
    from .definition import registry
    from .engine import policy
    from .exceptions import WorkflowDefinitionError

    errors = []
    for flow in registry.all_workflows():
        try:
            policy.check_commit(flow.graph)
        except WorkflowDefinitionError as exc:
            errors.append(
                Error(
                    f"Workflow {flow.name!r}: {exc}",
                    hint="Add the pool to WORKFLOWS['POOLS'], or change the step's pool=.",
                    id="workflows.E007",
                )
            )
    return errors


def _check_redis_url() -> list:
    from redis.connection import ConnectionPool

    url = conf.redis_url()
    try:
        ConnectionPool.from_url(url)  # parses only; connecting is the workers' business
    except (ValueError, TypeError) as exc:
        return [
            Error(
                f"The Redis URL {url!r} cannot be parsed: {exc}",
                hint="Set REDIS_URL (or WORKFLOWS['REDIS_URL']) to redis://host:port/db, rediss://… or unix:///path.",
                id="workflows.E004",
            )
        ]
    return []


@register(TAG)
def check_channel_layer(app_configs: Any, **kwargs: Any) -> list:
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    default = layers.get("default")
    if default is None:
        return [
            Error(
                "CHANNEL_LAYERS has no 'default' layer: the dashboard's live updates cannot be delivered",
                hint="Remove CHANNEL_LAYERS to have it derived from the Redis URL, or add a channels-redis 'default'.",
                id="workflows.E006",
            )
        ]
    if default.get("BACKEND", "").endswith("InMemoryChannelLayer"):
        return [
            Warning(
                "The default channel layer is in memory: updates made by worker processes never reach the dashboard",
                hint="Use channels_redis.core.RedisChannelLayer (remove CHANNEL_LAYERS to have it derived).",
                id="workflows.W002",
            )
        ]
    return []


@register(TAG)
def check_sqlite(app_configs: Any, **kwargs: Any) -> list:
    return sqlite_warnings(settings.DATABASES.get("default", {}))


def sqlite_warnings(db: dict[str, Any]) -> list:
    try:
        if conf.get("SQLITE_CHECK") == "off":
            return []
    except ImproperlyConfigured:
        return []
    if db.get("ENGINE") != "django.db.backends.sqlite3" or str(db.get("NAME", "")) in ("", ":memory:"):
        return []
    return [
        Warning(
            "Plain SQLite with several worker processes: writers contend for its one lock and transitions fail "
            "with 'database is locked' under load",
            hint=(
                "Use ENGINE 'workflows.sqlite' with OPTIONS {'transaction_mode': 'IMMEDIATE', 'timeout': 30} "
                "(README: 'SQLite'), or PostgreSQL. WORKFLOWS['SQLITE_CHECK'] = 'off' silences this."
            ),
            id="workflows.W001",
        )
    ]


@register(TAG)
def check_metrics(app_configs: Any, **kwargs: Any) -> list:
    """Metrics on: prometheus_client must be installed (E011); without a multiprocess directory only this process's
    counts are seen, not the workers' (W011)."""
    try:
        if not conf.get("METRICS"):
            return []
    except ImproperlyConfigured:
        return []
    import importlib.util
    import os

    if importlib.util.find_spec("prometheus_client") is None:
        hint = "pip install 'django-live-workflows[metrics]', or set WORKFLOWS['METRICS'] = False."
        return [
            Error("WORKFLOWS['METRICS'] is on but prometheus_client is not installed", hint=hint, id="workflows.E011")
        ]
    if not (os.environ.get("PROMETHEUS_MULTIPROC_DIR") or conf.get("METRICS_DIR")):
        return [
            Warning(
                "Metrics without a multiprocess directory: the endpoint shows only its own process's counts, none "
                "of the worker processes'",
                hint="Give every process PROMETHEUS_MULTIPROC_DIR (one directory per machine), or set "
                "WORKFLOWS['METRICS_DIR'] (README: 'Metrics (Prometheus)'). manage.py up sets one itself.",
                id="workflows.W011",
            )
        ]
    return []
