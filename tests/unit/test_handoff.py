"""A finishing step hands its pool slot to its successor, and its worker runs that successor at once."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import flows
from workflows import engine
from workflows.models import Run, StepRun, StepStatus
from workflows.runtime import dispatch
from workflows.testing import drain


def finished(run: Run) -> Run:
    drain()
    run.refresh_from_db()
    return run


def steps(run: Run) -> list[StepRun]:
    return list(run.steps.order_by("block"))


def test_handoff__the_worker_that_ran_a_step_runs_its_successor_in_the_same_job(engine_db):
    run = finished(flows.chain5.start({"value": 1}))

    assert run.status == "succeeded" and run.output == {"value": 25}
    first, *rest = steps(run)
    assert first.queued_at < first.started_at  # admitted, enqueued, then claimed by its job
    for prev, sr in zip([first, *rest], rest, strict=False):
        assert sr.worker == first.worker
        assert sr.queued_at == sr.started_at  # claimed in the transaction that completed its predecessor
        assert prev.finished_at <= sr.started_at
    kinds = [e.kind for e in run.events.filter(step="double").order_by("seq")]
    assert kinds == ["step_queued", "step_running", "step_succeeded"]  # never pending: it took a slot


def test_handoff__a_completion_claims_the_successor_in_one_transaction(engine_db):
    run = flows.counter.start({"value": 1})
    sr = engine.claim(run.step("increment").pk, "me:1")
    jobs_before = dispatch.get_queue("default").job_ids

    with CaptureQueriesContext(connection) as ctx:
        ok, nxt = engine.complete_and_take_next(sr, {"value": 2}, worker="me:1")

    assert ok and nxt is not None
    assert (nxt.path, nxt.status, nxt.worker, nxt.input) == ("increment", StepStatus.RUNNING, "me:1", {"value": 2})
    assert nxt.lease_expires_at > nxt.started_at
    sqls = [q["sql"].split()[0] for q in ctx.captured_queries]
    assert sqls.count("COMMIT") == 1 and "SAVEPOINT" not in sqls  # one transaction, no pool admission after it
    assert len(sqls) <= 9
    assert dispatch.get_queue("default").job_ids == jobs_before  # no RQ job: this worker runs it
    engine.complete(nxt, {"value": 3})
    run.refresh_from_db()
    assert run.status == "succeeded" and run.output == {"value": 3}


def test_handoff__without_a_worker_to_run_it_the_successor_is_queued_and_enqueued(engine_db):
    run = flows.counter.start({"value": 1})
    sr = engine.claim(run.step("increment").pk, "me:1")
    jobs_before = dispatch.get_queue("default").job_ids

    ok, nxt = engine.complete_and_take_next(sr, {"value": 2})

    second = run.steps.get(block=1)
    assert ok and nxt is None and second.status == StepStatus.QUEUED
    assert dispatch.get_queue("default").job_ids == [*jobs_before, dispatch.job_id(second.pk)]


def test_handoff__eager_seconds_zero_gives_every_step_its_own_job(engine_db, settings):
    settings.WORKFLOWS = {**settings.WORKFLOWS, "EAGER_SECONDS": 0}

    run = finished(flows.chain5.start({"value": 1}))

    assert run.status == "succeeded" and run.output == {"value": 25}
    assert all(sr.queued_at < sr.started_at for sr in steps(run))  # each one enqueued, then claimed by a job


def test_handoff__the_successor_takes_the_slot_even_when_new_runs_wait(engine_db):
    runs = [flows.narrow_chain.start({"value": i}) for i in range(5)]  # `narrow`: 3 slots; 2 first steps wait
    waiting = StepRun.objects.filter(pool="narrow", status=StepStatus.PENDING).count()
    assert waiting == 2

    drain()

    for run in runs:
        run.refresh_from_db()
        assert run.status == "succeeded"
    started = sorted(runs, key=lambda r: r.steps.get(path="n1").started_at)
    # the two runs that waited began after every step of some earlier run: runs under way came first
    late = started[-1]
    assert any(r.steps.get(path="n3").finished_at <= late.steps.get(path="n1").started_at for r in started[:3])


def test_watchdog__one_guard_thread_per_process_watches_every_step(engine_db):
    import threading

    for value in (1, 2):
        assert finished(flows.chain5.start({"value": value})).status == "succeeded"
    guards = [t for t in threading.enumerate() if t.name.startswith("workflows-watchdog")]
    assert len(guards) == 1  # ten steps, one thread: none is started (or left behind) per step
