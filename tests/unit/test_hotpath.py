"""One job per step, lean: the claim takes the run's seq in one statement, admission runs only when a step waits."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import flows
from workflows import engine
from workflows.models import Run, StepRun, StepStatus


def _sql(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries]


def _events(run: Run) -> list[tuple[int, str, str]]:
    return list(run.events.order_by("seq").values_list("seq", "kind", "step"))


def test_claim__a_runs_first_step_starts_the_run_without_reading_or_rewriting_its_row(engine_db):
    run = flows.counter.start({"value": 1})
    run.refresh_from_db()  # admitted after commit: step_queued
    before = run.last_seq
    first = run.step("increment")

    with CaptureQueriesContext(connection) as ctx:
        sr = engine.claim(first.pk, "me:1")

    assert sr is not None and sr.pk == first.pk and sr.status == StepStatus.RUNNING and sr.worker == "me:1"
    assert sr.input == {"value": 1} and sr.run.pk == run.pk and sr.run.workflow.name == "counter"
    sqls = _sql(ctx)
    assert not any("FOR UPDATE" in s.upper() for s in sqls)  # the run's seq is taken by the UPDATE that locks it
    assert len([s for s in sqls if s.split()[0] in ("UPDATE", "INSERT", "SELECT")]) == 3
    run.refresh_from_db()
    assert run.status == "running" and run.started_at is not None and run.last_seq == before + 2
    assert _events(run)[-2:] == [(before + 1, "step_running", "increment"), (before + 2, "run_started", "")]
    row = StepRun.objects.get(pk=first.pk)
    assert row.status == StepStatus.RUNNING and row.lease_expires_at > row.started_at


def test_claim__a_step_of_a_running_run_takes_one_seq_and_keeps_the_runs_start(engine_db):
    run = flows.counter.start({"value": 1})
    engine.complete(engine.claim(run.step("increment").pk, "me:1"), {"value": 2})
    run.refresh_from_db()
    started, seq = run.started_at, run.last_seq
    second = run.steps.get(block=1)

    sr = engine.claim(second.pk, "me:2")

    run.refresh_from_db()
    assert sr is not None and sr.input == {"value": 2}
    assert run.status == "running" and run.started_at == started and run.last_seq == seq + 1
    assert _events(run)[-1] == (seq + 1, "step_running", "increment")
    seqs = [s for s, _, _ in _events(run)]
    assert seqs == list(range(1, len(seqs) + 1))  # gapless


def test_claim__a_duplicate_or_late_job_changes_nothing(engine_db):
    run = flows.counter.start({"value": 1})
    first = run.step("increment").pk
    assert engine.claim(first, "me:1") is not None
    run.refresh_from_db()
    seq = run.last_seq

    assert engine.claim(first, "me:2") is None  # already running
    run.cancel()
    run.refresh_from_db()
    canceled_seq = run.last_seq
    assert engine.claim(run.steps.get(block=0).pk, "me:3") is None

    run.refresh_from_db()
    assert run.last_seq == canceled_seq > seq and StepRun.objects.get(pk=first).worker == "me:1"


def test_pump__a_finished_run_frees_its_slot_without_an_admission_transaction(engine_db):
    run = flows.counter.start({"value": 1})
    sr = engine.claim(run.step("increment").pk, "me:1")
    engine.complete(sr, {"value": 2})
    last = engine.claim(run.steps.get(block=1).pk, "me:1")

    with CaptureQueriesContext(connection) as ctx:
        assert engine.complete(last, {"value": 3})

    run.refresh_from_db()
    assert run.status == "succeeded"
    sqls = _sql(ctx)
    assert sum(s.split()[0] == "COMMIT" for s in sqls) == 1  # the completion only: nothing waits for the slot
    assert sum("FOR UPDATE" in s.upper() for s in sqls) <= 1  # the run's lock, never the pool's


def test_pump__a_waiting_step_is_still_admitted_when_a_slot_frees(engine_db):
    runs = [flows.narrow_chain.start({"value": i}) for i in range(4)]  # `narrow`: 3 slots; one first step waits
    waiting = StepRun.objects.get(pool="narrow", status=StepStatus.PENDING)
    holder = StepRun.objects.filter(pool="narrow", status=StepStatus.QUEUED).exclude(run=waiting.run).first()
    sr = engine.claim(holder.pk, "me:1")
    engine.fail(sr, ValueError("boom"), retryable=False)  # frees its slot without a successor to take it

    waiting.refresh_from_db()
    assert waiting.status == StepStatus.QUEUED and len(runs) == 4
