"""Pools at runtime: change a limit, pause and resume (no restart), and say what every limit is doing.

The settings give each pool's defaults; what is changed here lives in the pool's row, so every process sees it
at its next admission. A raised limit or a resumed pool admits at once (after commit); a lowered limit or a
paused pool lets running steps finish and admits nothing until the pool is under its limit again (a finishing
step hands its slot on only while the pool is under its runtime limit: ``handoff.may_hand_over``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .. import conf
from ..definition.rates import parse_rate
from ..exceptions import InvalidInput
from ..store.models import STEP_HOLDS_SLOT, Pool, StepRun, StepStatus
from . import pools
from .core import pump_after_commit

MAX_LIMIT = 100_000


@dataclass
class PoolState:
    name: str
    queue: str
    running: int  # queued + running: the slots held
    limit: int  # what admission uses now
    default_limit: int  # the settings' max_parallel
    paused: bool
    waiting: int  # pending and due: waiting for a slot, a key's slot or priority
    delayed: int  # pending with a due time ahead: a retry's backoff or a rate limit
    rate: str | None
    started_in_window: int | None  # steps started in the rate's window
    tokens: str | None
    tokens_in_window: int | None  # agent tokens used in the budget's window
    key_limit: int | None
    key_rate: str | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _settings(name: str):
    if not isinstance(name, str) or name not in conf.pools():
        raise InvalidInput(f"Unknown pool {name!r}: pools are named in WORKFLOWS['POOLS']")
    return conf.pool(name)


def set_limit(name: str, limit: int | None) -> PoolState:
    """The pool's limit from now on; None: back to the settings' ``max_parallel``."""
    settings = _settings(name)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= MAX_LIMIT):
        raise InvalidInput(f"max_parallel must be an integer from 1 to {MAX_LIMIT} (or null: the settings' value)")
    return _change(name, settings, limit=limit)


def pause(name: str) -> PoolState:
    """Admit nothing from the pool until ``resume``; its running steps finish."""
    return _change(name, _settings(name), paused=True)


def resume(name: str) -> PoolState:
    return _change(name, _settings(name), paused=False)


def _change(name: str, settings, **fields: Any) -> PoolState:
    pools.ensure(name, settings)
    with transaction.atomic():
        pools.lock(name)
        Pool.objects.filter(name=name).update(**fields)
        pump_after_commit({name})  # a raised limit or a resumed pool admits at once
    return state(name)


def states() -> list[PoolState]:
    return [state(name) for name in sorted(conf.pools())]


def state(name: str) -> PoolState:
    settings = _settings(name)
    row = Pool.objects.filter(name=name).first()
    now = timezone.now()
    counts = StepRun.objects.filter(pool=name).aggregate(
        running=Count("pk", filter=Q(status__in=STEP_HOLDS_SLOT)),
        waiting=Count("pk", filter=Q(status=StepStatus.PENDING, due_at__lte=now)),
        delayed=Count("pk", filter=Q(status=StepStatus.PENDING, due_at__gt=now)),
    )
    started = tokens = None
    if settings.rate:
        since = now - timedelta(seconds=parse_rate(settings.rate).seconds)
        started = StepRun.objects.filter(pool=name, queued_at__gte=since).count()
    if settings.tokens:
        tokens = pools.tokens_used(name, now - timedelta(seconds=parse_rate(settings.tokens).seconds))[0]
    return PoolState(
        name=name,
        queue=conf.queue_of(name),
        running=counts["running"],
        limit=row.effective_limit if row else settings.max_parallel,
        default_limit=settings.max_parallel,
        paused=bool(row and row.paused),
        waiting=counts["waiting"],
        delayed=counts["delayed"],
        rate=settings.rate,
        started_in_window=started,
        tokens=settings.tokens,
        tokens_in_window=tokens,
        key_limit=settings.key_limit,
        key_rate=settings.key_rate,
    )


@dataclass
class WaitReason:
    reason: str  # foreach, paused, rate, backoff, key, pool_full, priority, admitting
    message: str
    until: datetime | None = None  # when it may go, if known


def wait_reasons(run_id: int) -> dict[int, WaitReason]:
    """Why each pending step of the run waits (by StepRun id), most binding limit first."""
    rows = list(StepRun.objects.filter(run_id=run_id, status=StepStatus.PENDING).exclude(pool=""))
    now = timezone.now()
    states_: dict[str, PoolState] = {}
    out = {}
    for sr in rows:
        if sr.pool not in conf.pools():
            continue
        st = states_.get(sr.pool) or states_.setdefault(sr.pool, state(sr.pool))
        out[sr.pk] = _why(sr, st, now)
    return out


def _why(sr: StepRun, st: PoolState, now: datetime) -> WaitReason:
    if sr.due_at is None:
        return WaitReason("foreach", "waits for an earlier item (foreach concurrency)")
    if st.paused:
        return WaitReason("paused", f"pool {st.name!r} is paused")
    if sr.due_at > now:
        limited = pools.rate_wait(sr.pool, conf.pool(sr.pool), now)[1] is not None
        if limited:
            what = f"rate {st.rate}" if st.rate and st.started_in_window >= parse_rate(st.rate).count else None
            what = what or f"token budget {st.tokens}"
            return WaitReason("rate", f"pool {st.name!r} reached its {what}", sr.due_at)
        key_rate = conf.pool(sr.pool).key_rate
        if key_rate and sr.concurrency_key:
            rate = parse_rate(key_rate)
            since = now - timedelta(seconds=rate.seconds)
            started = StepRun.objects.filter(pool=sr.pool, concurrency_key=sr.concurrency_key, queued_at__gte=since)
            if started.count() >= rate.count:
                message = f"key {sr.concurrency_key!r} reached its rate {key_rate}"
                return WaitReason("rate", message, sr.due_at)
        return WaitReason("backoff", "retry after its backoff", sr.due_at)
    if sr.concurrency_key and sr.key_limit:
        held = pools.busy_of_key(sr.pool, sr.concurrency_key)
        if held >= sr.key_limit:
            return WaitReason("key", f"key {sr.concurrency_key!r} holds {held} of its {sr.key_limit} slots")
    if st.running >= st.limit:
        return WaitReason("pool_full", f"pool {st.name!r} is full ({st.running} of {st.limit} slots)")
    ahead = StepRun.objects.filter(pool=sr.pool, status=StepStatus.PENDING, due_at__lte=now, priority__gt=sr.priority)
    if ahead.exists():
        return WaitReason("priority", f"steps of higher priority than {sr.priority} go first")
    return WaitReason("admitting", "about to be admitted")
