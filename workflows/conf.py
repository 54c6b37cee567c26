"""The ``WORKFLOWS`` setting: one typed object with defaults, validated by pydantic, read lazily.

``settings()`` parses ``django.conf.settings.WORKFLOWS`` once (again after ``override_settings`` changes it);
an invalid value raises ``ImproperlyConfigured`` naming the key, and ``checks.py`` reports the same as a system
check with its fix. ``get("LEASE_SECONDS")`` reads one value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    field_validator,
)

from .definition.rates import parse_rate
from .exceptions import WorkflowDefinitionError

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolSettings(_Section):
    """A pool: at most ``max_parallel`` of its steps queued or running at once, on the RQ queue ``queue``;
    optionally at most ``key_limit`` of them per ``concurrency_key``, ``rate`` started and ``tokens`` used per
    period (see the README's "Flow control")."""

    queue: str | None = None  # default: the pool's name
    max_parallel: PositiveInt = 10  # the default; changed at runtime from the dashboard, admin or API
    concurrency_key: Callable[..., Any] | str | None = None  # fn(c) or its dotted path: the key of each step
    key_limit: PositiveInt | None = None  # slots one key may hold (for steps that name no limit of their own)
    rate: str | None = None  # steps started per period, e.g. "60/m"
    key_rate: str | None = None  # steps of one concurrency key started per period, e.g. "10/m"
    tokens: str | None = None  # agent tokens (input + output) per period, e.g. "200000/h"

    @field_validator("rate", "key_rate", "tokens")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_rate(value)
            except WorkflowDefinitionError as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def key_fn(self) -> Callable[..., Any] | None:
        key = self.concurrency_key
        return import_string(key) if isinstance(key, str) else key


class LiveSettings(_Section):
    """Live updates: publication to the channel layer and the websocket protocol."""

    PUBLISH_TIMEOUT: PositiveFloat = 1.0  # seconds a transition's process waits for the channel layer, at most
    HOLD_SECONDS: NonNegativeFloat = 0.02  # a worker's back-to-back transitions are published together
    PUBLISH_RETRY_AFTER: NonNegativeFloat = 5.0  # after a failure, drop publications this long
    MAX_EVENT_BYTES: PositiveInt = 64 * 1024  # bigger event data is not copied into Redis: read from the DB
    MAX_SUBSCRIPTIONS: PositiveInt = 50  # per websocket connection
    BUFFER_FRAMES: PositiveInt = 1000  # data frames queued for one connection before its topics must resync
    MAX_BUFFER_BYTES: PositiveInt = 2 << 20  # bytes of data frames queued for one connection, likewise
    DRAIN_SECONDS: PositiveFloat = 60.0  # a client that acknowledges nothing this long while frames wait: closed
    MAX_CONNECTIONS_PER_USER: PositiveInt = 20  # open websockets of one user, across every daphne process
    WINDOW_BYTES: PositiveInt = 1 << 20  # bytes sent and not yet acknowledged by the client (flow control)
    SNAPSHOT_RUNS: PositiveInt = 50  # runs in the snapshot that opens a "runs" or "workflow:<name>" subscription
    REPLAY_BATCH: PositiveInt = 200  # events read from the journal per query when replaying or filling a gap
    SWEEP_SECONDS: PositiveFloat = 5.0  # how often a connection re-joins its groups and checks for missed events
    MAX_FRAME_BYTES: PositiveInt = 64 * 1024  # a bigger client frame is answered with a bad_request error


class RateLimits(_Section):
    """Per-user rate limits of the web layer (``web.throttle``), in the ``limits`` notation: "60/minute",
    "1000 per day", "5/10 seconds". None: not limited. Trusted code (``flow.start``, the engine) is never limited."""

    start: str | None = "60/minute"  # run starts: launch (form, API), retry, restart
    event: str | None = "120/minute"  # events sent to runs
    resume: str | None = "60/minute"  # resumes of suspended steps

    @field_validator("start", "event", "resume")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        from limits import parse

        if value:
            try:
                parse(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a rate: write it like '60/minute' or '1000 per day'") from None
        return value or None


class WorkflowsSettings(_Section):
    """Every key of ``settings.WORKFLOWS``; all optional."""

    REDIS_URL: str | None = None  # default: the REDIS_URL environment variable, else redis://localhost:6379/0
    POOLS: dict[str, PoolSettings] = Field(default_factory=lambda: {"default": PoolSettings()})
    DEFAULT_POOL: str = "default"
    WORKER_CLASS: str = "rq.worker.Worker"  # forking, isolates steps; rq.worker.SimpleWorker is faster
    LEASE_SECONDS: PositiveFloat = 30.0  # a running step's lease; renewed by its worker's heartbeat
    HEARTBEAT_SECONDS: PositiveFloat = 1.0  # how often a running step checks for cancel and renews its lease
    PROCESS_HEARTBEAT_SECONDS: PositiveFloat = 5.0  # workers' and recovery loops' beats (runtime.heartbeats)
    TICK_SECONDS: PositiveFloat = 0.25  # recovery loop period: due timers, expired leases, lost jobs
    REQUEUE_AFTER_SECONDS: NonNegativeFloat = 30.0  # a queued step with no RQ job for this long is enqueued again
    RECONNECT_SECONDS: NonNegativeFloat = 60.0  # a worker retries reporting an outcome this long, database down
    EAGER_SECONDS: NonNegativeFloat = 1.0  # a job runs the successors handed its slot while younger; 0: never
    SHUTDOWN_GRACE_SECONDS: NonNegativeFloat = 30.0  # after SIGTERM, a running step's time to finish before handed back
    WORKER_LOST_RETRIES: NonNegativeInt = 3  # attempts lost with their worker retried, on top of the step's retries
    SHUTDOWN_RETRIES: NonNegativeInt = 10  # attempts handed back by a shutting-down worker retried, likewise
    DEFAULT_RETRIES: int = Field(default=0, ge=0)
    DEFAULT_BACKOFF: NonNegativeFloat = 1.0
    DEFAULT_TIMEOUT: PositiveFloat | None = None
    SCHEDULE_CATCHUP_MAX: PositiveInt = 10  # catchup="all": at most this many missed due times fire (the latest)
    SCHEDULE_GRACE_SECONDS: NonNegativeFloat = 60.0  # a due time fired this late is still on time, not "missed"
    PRIORITY_AGING_SECONDS: PositiveFloat = 60.0  # a step pending this long goes before any priority (no starvation)
    SQLITE_CHECK: Literal["warn", "off"] = "warn"  # the system check on plain SQLite with worker processes
    MAX_JSON_DEPTH: PositiveInt = 64  # nesting of user-sent JSON (inputs, resume data, events, bodies, frames)
    MAX_INPUT_BYTES: PositiveInt = 1 << 20  # size of a run's input, resume data or event payload as JSON; API bodies
    RATE_LIMITS: RateLimits = Field(default_factory=RateLimits)
    MAX_OUTPUT_BYTES: PositiveInt = 16 << 20  # a step's output as JSON; bigger fails the step (OutputTooLarge)
    MAX_EVENT_BYTES: PositiveInt = 256 << 10  # a send_event payload as JSON; bigger is InvalidInput (a 400)
    INLINE_VALUE_BYTES: PositiveInt = 16 << 10  # bigger values are stored once and referred to (store.values)
    LIVE: LiveSettings = Field(default_factory=LiveSettings)
    METRICS: bool = False  # Prometheus metrics at <prefix>/metrics (the metrics extra); off: not recorded, 404
    METRICS_DIR: str | None = None  # prometheus_client's multiprocess directory, unless PROMETHEUS_MULTIPROC_DIR is set
    METRICS_TOKEN: str | None = None  # a scraper's bearer token for <prefix>/metrics (else: a staff user's session)


@cache
def settings() -> WorkflowsSettings:
    """The parsed ``WORKFLOWS`` setting. ImproperlyConfigured (with every problem) when it is invalid."""
    raw = getattr(django_settings, "WORKFLOWS", None) or {}
    try:
        return WorkflowsSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"WORKFLOWS[{']['.join(repr(p) for p in e['loc'])}]: {e['msg']}" for e in exc.errors())
        raise ImproperlyConfigured(f"Invalid WORKFLOWS setting: {problems}") from None


def _forget(*, setting: str, **kwargs: Any) -> None:
    if setting == "WORKFLOWS":
        settings.cache_clear()


setting_changed.connect(_forget)


def get(name: str) -> Any:
    return getattr(settings(), name)


def live(name: str) -> Any:
    """``WORKFLOWS["LIVE"][name]``, or its default."""
    return getattr(settings().LIVE, name)


def json_limits() -> dict[str, int]:
    """``max_depth`` and ``max_bytes`` for ``definition.limits``: the bounds on JSON that users send."""
    return {"max_depth": get("MAX_JSON_DEPTH"), "max_bytes": get("MAX_INPUT_BYTES")}


def pools() -> dict[str, PoolSettings]:
    return settings().POOLS


def pool(name: str) -> PoolSettings:
    try:
        return pools()[name]
    except KeyError:
        raise WorkflowDefinitionError(f"Unknown pool {name!r}: add it to WORKFLOWS['POOLS']") from None


def queue_of(pool_name: str) -> str:
    return pool(pool_name).queue or pool_name


def queue_names() -> list[str]:
    return sorted({queue_of(name) for name in pools()})


def redis_url() -> str:
    """``WORKFLOWS["REDIS_URL"]``, else the ``REDIS_URL`` environment variable, else a local Redis."""
    return settings().REDIS_URL or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def worker_class() -> type:
    return import_string(get("WORKER_CLASS"))


def rq_queues() -> dict[str, dict[str, Any]]:
    """``RQ_QUEUES`` derived from the Redis URL: one queue per pool queue."""
    return {name: {"URL": redis_url()} for name in queue_names()}


def channel_layers() -> dict[str, Any]:
    """``CHANNEL_LAYERS`` derived from the Redis URL (channels-redis)."""
    # redis-py 8 times a read out after 5 s by default: exactly channels-redis's 5 s blocking receive, which then
    # kills every idle websocket consumer. Reads may take longer than that; connecting fails fast.
    host = {"address": redis_url(), "socket_timeout": 15, "socket_connect_timeout": 3}
    return {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [host]}}}
