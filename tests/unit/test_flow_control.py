"""Flow control in one process: per-key concurrency, rate limits, priority, live pool control, why a step waits.

Admission is checked on the rows it leaves (which steps hold slots), and on the order the steps started in
(``fc:order``, written by the steps themselves). The multi-process proofs are in tests/integration.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings

from tests.testapp import flow_control_flows as fc
from workflows import Workflow, step
from workflows.engine import pool_control
from workflows.exceptions import InvalidInput, WorkflowDefinitionError
from workflows.models import Run, StepRun, StepStatus
from workflows.testing import drain

HOLDS = (StepStatus.QUEUED, StepStatus.RUNNING)


def holders(pool: str, **filters) -> int:
    return StepRun.objects.filter(pool=pool, status__in=HOLDS, **filters).count()


def order(redis_conn) -> list[str]:
    """The runs and steps, in the order they started: ``"<run id>:<path>"``."""
    return [v.decode() for v in redis_conn.lrange("fc:order", 0, -1)]


def reasons(run: Run) -> dict[str, tuple[str, object]]:
    got = pool_control.wait_reasons(run.pk)
    paths = dict(StepRun.objects.filter(pk__in=list(got)).values_list("pk", "path"))
    return {paths[pk]: (w.reason, w.until) for pk, w in got.items()}


# --- per-key concurrency --------------------------------------------------------------------------------------


def test_key__a_tenant_never_holds_more_than_its_key_limit_and_others_take_the_free_slots(engine_db):
    a = [fc.keyed.start({"tenant": "a", "value": i}) for i in range(5)]
    b = [fc.keyed.start({"tenant": "b", "value": i}) for i in range(2)]

    assert holders("tenants", concurrency_key="a") == 2  # key_limit=2 of the pool's 4 slots
    assert holders("tenants", concurrency_key="b") == 2  # b's steps went past a's waiting ones
    assert StepRun.objects.get(run=a[2]).concurrency_key == "a" and StepRun.objects.get(run=a[2]).key_limit == 2
    assert reasons(a[4]) == {"per_tenant": ("key", None)}
    drain()
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in a + b])} == {"succeeded"}


def test_key__a_workflows_key_and_a_pools_key_from_settings(engine_db):
    w = [fc.workflow_keyed.start({"tenant": "t", "value": i}) for i in range(2)]  # key from the run input, limit 1
    p = [fc.pool_keyed.start({"tenant": "t", "value": i}) for i in range(3)]  # the pool's dotted-path key, limit 1

    assert holders("tenants", concurrency_key="t") == 1 and reasons(w[1]) == {"unkeyed": ("key", None)}
    assert holders("pooled_keys", concurrency_key="t") == 1 and reasons(p[2]) == {"pooled": ("key", None)}
    drain()
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in w + p])} == {"succeeded"}


def test_key__a_key_function_that_raises_fails_the_run_and_nothing_waits(engine_db):
    run = fc.broken_key.start({"tenant": "x"})
    run.refresh_from_db()
    assert run.status == "failed" and run.error["type"] == "ConcurrencyKeyError" and "no tenant" in run.error["message"]
    assert not StepRun.objects.filter(run=run).exists()


def test_key__bad_declarations_are_definition_errors():
    with pytest.raises(WorkflowDefinitionError, match="key_limit"):
        step(id="bad", pool="tenants", concurrency_key=lambda c: "k", key_limit=0)(lambda ctx, data: data)
    with pytest.raises(WorkflowDefinitionError, match="concurrency_key"):
        Workflow("fc-bad-key", concurrency_key="tenant")
    with pytest.raises(WorkflowDefinitionError, match="priority"):
        Workflow("fc-bad-priority", priority="high")


# --- rate limits ----------------------------------------------------------------------------------------------


def test_rate__a_step_over_the_rate_waits_pending_with_its_due_time_then_runs(engine_db):
    runs = [fc.rated.start({"value": i}) for i in range(3)]  # the pool allows 2 starts per 3 s

    assert holders("rated") == 2
    late = StepRun.objects.get(run=runs[2])
    first = StepRun.objects.filter(run__in=runs[:2]).order_by("queued_at").first()
    assert late.status == "pending" and late.due_at >= first.queued_at + timedelta(seconds=3)  # in the database
    assert reasons(runs[2]) == {"rated_step": ("rate", late.due_at)}
    assert pool_control.state("rated").started_in_window == 2 and pool_control.state("rated").delayed == 1
    drain(timeout=30)
    late.refresh_from_db()
    assert late.status == "succeeded" and late.queued_at >= first.queued_at + timedelta(seconds=3)


def test_rate__a_key_within_a_pool_has_its_own_rate_and_other_keys_go_on(engine_db):
    a = [fc.key_rated.start({"tenant": "a", "value": i}) for i in range(3)]  # 2 starts per key per hour
    b = fc.key_rated.start({"tenant": "b", "value": 9})

    assert holders("key_rated", concurrency_key="a") == 2 and holders("key_rated", concurrency_key="b") == 1
    late = StepRun.objects.get(run=a[2])
    first = StepRun.objects.filter(run__in=a[:2]).order_by("queued_at").first()
    assert late.status == "pending" and late.due_at == first.queued_at + timedelta(hours=1)
    assert reasons(a[2]) == {"key_rated_step": ("rate", late.due_at)}
    drain()  # returns: only a due time an hour away remains
    assert {r.status for r in Run.objects.filter(pk__in=[a[0].pk, a[1].pk, b.pk])} == {"succeeded"}
    assert StepRun.objects.get(run=a[2]).status == "pending"


def test_rate__an_agent_pools_token_budget_holds_its_next_steps_until_the_window_allows(engine_db):
    first = fc.budgeted.start({"value": 1})
    drain()
    first.refresh_from_db()
    assert first.status == "succeeded" and first.usage["total_tokens"] > 0
    assert pool_control.state("budget").tokens_in_window == first.usage["total_tokens"]  # over its 1/h budget

    second = fc.budgeted.start({"value": 2})
    drain()  # returns: only a later due time remains
    waiting = StepRun.objects.get(run=second, path="answer")
    assert waiting.status == "pending" and waiting.due_at > first.finished_at + timedelta(minutes=59)
    assert reasons(second) == {"answer": ("rate", waiting.due_at)}


def test_rate__an_invalid_rate_in_settings_names_the_pool(settings):
    from django.core.exceptions import ImproperlyConfigured

    from workflows import conf

    settings.WORKFLOWS = {"POOLS": {"default": {"rate": "fast"}}}
    with pytest.raises(ImproperlyConfigured, match=r"POOLS'\]\['default'\]\['rate'\]"):
        conf.settings()


# --- priority -------------------------------------------------------------------------------------------------


def test_priority__higher_first_then_the_workflows_default(engine_db, redis_conn):
    pool_control.pause("single")
    low = fc.single.start({"value": 0})
    mid = fc.single.start({"value": 1}, priority=5)
    urgent = fc.urgent.start({"value": 2})  # Workflow(priority=7)
    one = fc.single.start({"value": 3}, priority=1)
    assert reasons(low) == {"first": ("paused", None)}
    pool_control.resume("single")
    drain()
    assert order(redis_conn) == [f"{r.pk}:first" for r in (urgent, mid, one, low)]
    assert Run.objects.get(pk=urgent.pk).priority == 7


def test_priority__a_run_under_way_goes_before_new_runs_of_its_priority_not_before_higher_ones(engine_db, redis_conn):
    pool_control.pause("single")
    a = fc.single_two.start({"value": 0})
    b = fc.single_two.start({"value": 1})
    pool_control.resume("single")  # a's first step holds the one slot
    high = fc.single.start({"value": 2}, priority=5)
    assert reasons(high) == {"first": ("pool_full", None)}
    drain()
    # a's second step would take a's slot at once (handed over), but a step of higher priority waits
    assert order(redis_conn) == [f"{a.pk}:first", f"{high.pk}:first", f"{a.pk}:second", f"{b.pk}:first",
                                 f"{b.pk}:second"]  # fmt: skip


@override_settings(WORKFLOWS={"POOLS": {"default": {}, "single": {"queue": "default", "max_parallel": 1}},
                              "PRIORITY_AGING_SECONDS": 1})  # fmt: skip
def test_priority__a_step_waiting_longer_than_the_aging_time_goes_before_higher_priorities(engine_db, redis_conn):
    pool_control.pause("single")
    old = fc.single.start({"value": 0})
    time.sleep(1.5)
    new = fc.single.start({"value": 1}, priority=100)
    pool_control.resume("single")
    drain()
    assert order(redis_conn) == [f"{old.pk}:first", f"{new.pk}:first"]


def test_priority__must_be_an_integer(engine_db):
    with pytest.raises(InvalidInput, match="priority"):
        fc.single.start({"value": 0}, priority="high")
    assert not Run.objects.exists()


# --- live pool control ----------------------------------------------------------------------------------------


def test_pool__paused_admits_nothing_and_resumed_admits_at_once(engine_db):
    pool_control.pause("narrow")
    run = fc.narrow3.start({"value": 1})
    assert holders("narrow") == 0 and reasons(run) == {"n1": ("paused", None)}
    assert pool_control.state("narrow").paused and pool_control.state("narrow").waiting == 1
    pool_control.resume("narrow")
    assert holders("narrow") == 1
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_pool__a_raised_limit_admits_at_once_and_none_goes_back_to_the_settings(engine_db):
    runs = [fc.narrow3.start({"value": i}) for i in range(5)]
    assert holders("narrow") == 3
    pool_control.set_limit("narrow", 5)
    assert holders("narrow") == 5 and pool_control.state("narrow").limit == 5
    assert pool_control.set_limit("narrow", None).limit == 3
    drain()
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {"succeeded"}


def test_pool__a_lowered_limit_is_honoured_as_steps_finish_even_by_slots_handed_on(engine_db):
    from workflows import engine

    runs = [fc.narrow3.start({"value": i}) for i in range(3)]
    claimed = [engine.claim(StepRun.objects.get(run=r, path="n1").pk, "test-worker") for r in runs]
    pool_control.set_limit("narrow", 1)
    seen = []
    for sr in claimed:
        engine.complete(sr, {"value": 0})  # its successor would take its slot: not while over the limit
        seen.append(holders("narrow"))
    assert seen == [2, 1, 1]  # the last one freed the pool: one step admitted, under the new limit
    drain()
    assert {r.status for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {"succeeded"}


def test_pool__bad_changes_are_refused_and_change_nothing(engine_db):
    with pytest.raises(InvalidInput, match="Unknown pool"):
        pool_control.pause("nope")
    for bad in (0, -1, "3", True, 10**9):
        with pytest.raises(InvalidInput, match="max_parallel"):
            pool_control.set_limit("narrow", bad)
    assert pool_control.state("narrow").limit == 3 and not pool_control.state("narrow").paused
