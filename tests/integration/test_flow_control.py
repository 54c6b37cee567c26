"""Flow control with real worker processes: the limits hold across processes (overlap recorded by the steps
themselves in Redis), a rate-limited step waits in the database, priority orders admission, and a pool's limit
lowered at runtime is honoured as steps finish, slots handed from step to step included."""

from __future__ import annotations

import pytest
from rq.registry import StartedJobRegistry

from tests.testapp import flow_control_flows as fc
from workflows import conf
from workflows.engine import pool_control
from workflows.models import StepRun, StepStatus

from .conftest import SIMPLE, finished, wait_for

pytestmark = pytest.mark.integration
HOLDS = (StepStatus.QUEUED, StepStatus.RUNNING)


def overlap(redis_conn, key: str) -> list[int]:
    return [int(v) for v in redis_conn.lrange(f"fc:overlap:{key}", 0, -1)]


def test_key__a_tenant_never_holds_more_than_its_key_limit_across_four_workers(start_workers, redis_conn):
    start_workers(4, SIMPLE)

    runs = [fc.keyed_chain.start({"tenant": t, "value": i, "seconds": 0.3}) for i in range(4) for t in "abc"]

    for run in runs:
        assert finished(run, timeout=120).status == "succeeded", run.error
    for tenant in "abc":
        counts = overlap(redis_conn, tenant)
        assert len(counts) == 8 and max(counts) <= 2  # each body once; key_limit=2, steps handed on included
    assert max(max(overlap(redis_conn, t)) for t in "abc") == 2  # and the keys were used in parallel
    assert max(overlap(redis_conn, "tenants")) <= 4  # the pool's own limit


def test_rate__a_step_over_the_rate_waits_pending_in_the_database_with_no_worker_held(
    start_workers, recovery_loop, redis_conn
):
    start_workers(2, SIMPLE)

    first, second = fc.slow_rated.start({"value": 1}), fc.slow_rated.start({"value": 2})  # 1 start per 10 s

    assert finished(first).status == "succeeded"
    started = StepRun.objects.get(run=first).queued_at
    waiting = StepRun.objects.get(run=second)
    assert waiting.status == StepStatus.PENDING and waiting.due_at >= started  # waits in the database
    idle = [StartedJobRegistry(q, connection=redis_conn) for q in conf.queue_names()]
    wait_for(lambda: all(r.count == 0 for r in idle), 5, what="the workers idle (the first job cleaned up)")
    waiting.refresh_from_db()
    assert waiting.status == StepStatus.PENDING  # still: no job, no worker held, no slot held
    assert not StepRun.objects.filter(pool="slow_rate", status__in=HOLDS).exists()
    assert pool_control.wait_reasons(second.pk)[waiting.pk].reason == "rate"
    assert finished(second, timeout=60).status == "succeeded"
    assert StepRun.objects.get(run=second).queued_at.timestamp() >= started.timestamp() + 10


def test_priority__one_worker_runs_higher_priorities_first(start_workers, redis_conn):
    start_workers(1, SIMPLE)
    pool_control.pause("single")
    runs = [fc.single.start({"value": p}, priority=p) for p in (0, 3, 9, 1)]
    pool_control.resume("single")

    for run in runs:
        assert finished(run).status == "succeeded"
    started = [v.decode() for v in redis_conn.lrange("fc:order", 0, -1)]
    assert started == [f"{runs[i].pk}:first" for i in (2, 1, 3, 0)]


def test_pool__a_limit_lowered_at_runtime_holds_across_workers_with_slots_handed_on(start_workers, redis_conn):
    start_workers(3, SIMPLE)
    runs = [fc.narrow3.start({"value": i, "seconds": 0.8}) for i in range(6)]  # chains: slots handed on
    wait_for(lambda: int(redis_conn.get("fc:running:narrow") or 0) == 3, 60, what="the pool's 3 slots in use")

    pool_control.set_limit("narrow", 1)
    wait_for(lambda: StepRun.objects.filter(pool="narrow", status__in=HOLDS).count() <= 1, 60, what="the pool drained")
    after = redis_conn.llen("fc:overlap:narrow")  # steps started from here on

    for run in runs:
        assert finished(run, timeout=120).status == "succeeded", run.error
    counts = overlap(redis_conn, "narrow")
    assert len(counts) == 18 and max(counts) == 3  # the pool was full before
    assert counts[after:] and max(counts[after:]) <= 1  # and never over the lowered limit again
