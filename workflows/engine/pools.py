"""Pool admission: pending -> queued, never past a pool's limit, its keys' limits or its rates.

Order (``_order``): a step pending longer than ``PRIORITY_AGING_SECONDS`` first (so no priority starves
another), then higher priority, then older runs (a run already under way: its retries, loop iterations, next
steps, before the first steps of runs created after it), then due time. Everything is decided under the pool
row's lock, so the limits hold across processes. Transitions never take a pool lock, so the order
pool -> runs (by id) -> steps cannot deadlock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import conf, faults
from ..conf import PoolSettings
from ..definition.rates import parse_rate
from ..store import statements
from ..store.conversations import AgentMessage
from ..store.journal import Journal
from ..store.models import STEP_HOLDS_SLOT, Pool, StepRun, StepStatus

_known: dict[str, int] = {}  # pools whose row this process has written, with the settings' limit


def ensure(pool: str, settings: PoolSettings) -> None:
    """The pool's row exists, with the settings' ``max_parallel`` (a runtime ``limit`` stays as set)."""
    if _known.get(pool) != settings.max_parallel:
        Pool.objects.update_or_create(name=pool, defaults={"max_parallel": settings.max_parallel})
        _known[pool] = settings.max_parallel


def lock(pool: str) -> Pool:
    """The pool's row, locked for the rest of the transaction (the admission lock)."""
    row = statements.lock_pool(pool)
    if row is None:  # deleted since this process wrote it (a flushed test database)
        Pool.objects.get_or_create(name=pool, defaults={"max_parallel": conf.pool(pool).max_parallel})
        row = statements.lock_pool(pool)
    paused, limit, max_parallel = row
    return Pool(name=pool, paused=paused, limit=limit, max_parallel=max_parallel)


def busy(pool: str) -> int:
    return statements.count_in(pool, STEP_HOLDS_SLOT)


def busy_of_key(pool: str, key: str) -> int:
    return StepRun.objects.filter(pool=pool, concurrency_key=key, status__in=STEP_HOLDS_SLOT).count()


def rate_wait(pool: str, settings: PoolSettings, now: datetime) -> tuple[int, datetime | None]:
    """(starts the pool's rates allow now, when the next one is allowed if none). Unlimited: a large number."""
    allowed, until = 1 << 30, None
    if settings.rate:
        rate = parse_rate(settings.rate)
        since = now - timedelta(seconds=rate.seconds)
        window = StepRun.objects.filter(pool=pool, queued_at__gte=since)
        left = rate.count - window.count()
        if left <= 0:
            oldest = window.order_by("queued_at").values_list("queued_at", flat=True)[-left]
            until = oldest + timedelta(seconds=rate.seconds)
        allowed = min(allowed, max(left, 0))
    if settings.tokens:
        budget = parse_rate(settings.tokens)
        since = now - timedelta(seconds=budget.seconds)
        used, oldest = tokens_used(pool, since)
        if used >= budget.count:
            allowed, until = 0, max(until or now, (oldest or now) + timedelta(seconds=budget.seconds))
    return allowed, until


def tokens_used(pool: str, since: datetime) -> tuple[int, datetime | None]:
    """Tokens the agent steps of ``pool`` recorded since ``since`` (their model responses), and the oldest's time."""
    of_pool = StepRun.objects.filter(
        run=OuterRef("run"), block=OuterRef("block"), path=OuterRef("step_path"), pool=pool
    )
    rows = AgentMessage.objects.filter(created_at__gte=since, kind="response").filter(Exists(of_pool))
    total = rows.aggregate(n=Sum(F("input_tokens") + F("output_tokens")))["n"] or 0
    oldest = rows.order_by("created_at").values_list("created_at", flat=True).first()
    return total, oldest


def _order(pool: str, now: datetime) -> list:
    """Admission order. While every pending step of the pool has the same priority (the usual case: checked on
    the (pool, status, priority) index), priority and aging change nothing: run order, on the fair index."""
    pending = StepRun.objects.filter(pool=pool, status=StepStatus.PENDING).order_by()
    low = pending.order_by("priority").values_list("priority", flat=True).first()
    high = pending.order_by("-priority").values_list("priority", flat=True).first()
    if low == high:
        return ["run_id", "due_at", "id"]
    aged = now - timedelta(seconds=conf.get("PRIORITY_AGING_SECONDS"))
    waited = Case(When(created_at__lt=aged, then=Value(1)), default=Value(0), output_field=IntegerField())
    return [waited.desc(), F("priority").desc(), "run_id", "due_at", "id"]  # an aged step before any priority


def _held_by_key() -> Coalesce:
    held = (
        StepRun.objects.filter(pool=OuterRef("pool"), concurrency_key=OuterRef("concurrency_key"))
        .filter(status__in=STEP_HOLDS_SLOT)
        .order_by()
        .values("concurrency_key")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(held, output_field=IntegerField()), 0)


def waiting(pool: str) -> bool:
    """Does a due step of ``pool`` wait for a slot? One read, no lock: when none does, admission (a transaction
    under the pool's lock) has nothing to do. A step that becomes pending after this read pumps for itself."""
    return statements.any_due(pool, StepStatus.PENDING, timezone.now())


def admit(pool: str, settings: PoolSettings | None = None) -> list[int]:
    """pending -> queued for as many due steps of ``pool`` as its limits allow. Returns the admitted ids.

    A step whose key holds ``key_limit`` slots is passed over (steps behind it go first). When a rate stops
    admission, the due steps get the time it allows the next start as their due time: they wait in the database,
    and the pump after commit or the recovery loop admits them when due (no worker held, no busy loop).
    """
    settings = settings or conf.pool(pool)
    ensure(pool, settings)
    if not waiting(pool):
        return []
    with transaction.atomic():
        row = lock(pool)
        if row.paused:
            return []
        free = row.effective_limit - busy(pool)
        if free <= 0:
            return []
        now = timezone.now()
        due = StepRun.objects.filter(pool=pool, status=StepStatus.PENDING, due_at__lte=now)
        allowed, until = rate_wait(pool, settings, now)
        if until is not None:
            due.update(due_at=until)  # they wait for the rate, in the database
        free = min(free, allowed)
        if free <= 0:
            return []
        room = _key_rate_room(due, pool, settings.key_rate, now) if settings.key_rate else None
        candidates = _candidates(due, pool, free, now, room)
        if not candidates:
            return []
        runs = {pk: statements.lock_run(pk) for pk in sorted({c[1] for c in candidates})}  # in id order
        journals = {pk: Journal(run) for pk, run in runs.items()}
        admitted = []
        for sr_id, run_id, path, attempt in candidates:
            queued = StepRun(pk=sr_id, status=StepStatus.QUEUED, queued_at=now)
            if statements.update_fields(queued, ["status", "queued_at"], where={"status": (StepStatus.PENDING,)}):
                admitted.append(sr_id)
                journals[run_id].add("step_queued", path, attempt=attempt)
        for pk, journal in journals.items():
            journal.flush()
            statements.update_fields(runs[pk], ["last_seq"])
        faults.point("admit_before_commit")
    return admitted


def _key_rate_room(due, pool: str, key_rate: str, now: datetime) -> dict[str, int]:
    """Starts each key of the due steps may still make within ``key_rate``'s window. The due steps of a key that
    has none left get the time its window next allows a start as their due time, and wait for it."""
    rate = parse_rate(key_rate)
    since = now - timedelta(seconds=rate.seconds)
    keys = due.exclude(concurrency_key="").order_by().values("concurrency_key").distinct()
    window = StepRun.objects.filter(pool=pool, queued_at__gte=since, concurrency_key__in=Subquery(keys))
    started = dict(window.order_by().values_list("concurrency_key").annotate(n=Count("pk")))
    for key, n in started.items():
        if n >= rate.count:
            oldest = window.filter(concurrency_key=key).order_by("queued_at").values_list("queued_at", flat=True)
            due.filter(concurrency_key=key).update(due_at=oldest[n - rate.count] + timedelta(seconds=rate.seconds))
    return {key: rate.count - started.get(key, 0) for key in set(due.values_list("concurrency_key", flat=True))}


def _candidates(
    due, pool: str, free: int, now: datetime, room: dict[str, int] | None = None
) -> list[tuple[int, int, str, int]]:
    """Up to ``free`` due steps in admission order, none past its key's limit or its key's rate (``room``: the
    starts each key has left), counting the ones taken here."""
    if room is None and (plain := statements.plain_due(pool, StepStatus.PENDING, now, free)) is not None:
        return plain  # the usual case: one priority, no keys (two statements, their SQL built once)
    order = _order(pool, now)
    if not due.exclude(concurrency_key="").exists():  # no keys: no per-key counts to take
        return list(due.order_by(*order).values_list("id", "run_id", "path", "attempt")[:free])
    keyed = due.annotate(held=_held_by_key()).filter(Q(concurrency_key="") | Q(held__lt=F("key_limit")))
    fields = ("id", "run_id", "path", "attempt", "concurrency_key", "key_limit", "held")
    taken: list[tuple[int, int, str, int]] = []
    counts: dict[str, int] = {}
    full: set[str] = set()
    seen: set[int] = set()
    while len(taken) < free:
        rest = keyed.exclude(concurrency_key__in=full).exclude(pk__in=seen).order_by(*order)
        batch = list(rest.values_list(*fields)[: free - len(taken)])
        if not batch:
            break
        for sr_id, run_id, path, attempt, key, limit, held in batch:
            seen.add(sr_id)
            if key:
                n = counts.setdefault(key, held)
                if n >= (limit or 1) or key in full or (room is not None and room.get(key, 0) <= 0):
                    full.add(key)
                    continue
                counts[key] = n + 1
                if room is not None:
                    room[key] = room.get(key, 0) - 1
                if n + 1 >= (limit or 1) or (room is not None and room[key] <= 0):
                    full.add(key)
            taken.append((sr_id, run_id, path, attempt))
    return taken
