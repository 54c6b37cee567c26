"""Between two foreach items: the finishing item hands its slot to the next item, without counting the block."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.testapp import control_flows as cf
from workflows import engine
from workflows.models import Run, StepStatus
from workflows.runtime import dispatch
from workflows.testing import drain


def finished(run: Run) -> Run:
    drain()
    run.refresh_from_db()
    return run


def progress(run: Run) -> list[dict]:
    return list(run.events.filter(kind="foreach_progress").order_by("seq").values_list("data", flat=True))


def test_foreach__an_item_hands_its_slot_to_the_next_item_in_order_without_counting_the_block(engine_db):
    run = cf.squares.start([1, 2, 3, 4, 5, 6])  # concurrency 2: items 0 and 1 are released
    sr = engine.claim(run.step("square_item[0]").pk, "me:1")
    jobs_before = dispatch.get_queue("default").job_ids

    with CaptureQueriesContext(connection) as ctx:
        ok, nxt = engine.complete_and_take_next(sr, 1, worker="me:1")

    assert ok and (nxt.path, nxt.status, nxt.worker, nxt.input) == ("square_item[2]", StepStatus.RUNNING, "me:1", 3)
    sqls = [q["sql"].upper() for q in ctx.captured_queries]
    assert not any("COUNT(" in sql for sql in sqls)  # no aggregate over the block's rows, however long the list
    assert [sql.split()[0] for sql in sqls].count("COMMIT") == 1
    assert dispatch.get_queue("default").job_ids == jobs_before  # no RQ job: this worker runs it
    while nxt is not None:  # this worker goes on with items 3, 4, 5 while item 1 waits in its job
        ok, nxt = engine.complete_and_take_next(nxt, nxt.input**2, worker="me:1")
        assert ok
    assert [sr.path for sr in run.steps.filter(worker="me:1").order_by("started_at", "pk")] == [
        f"square_item[{i}]" for i in (0, 2, 3, 4, 5)
    ]
    run = finished(run)
    assert run.status == "succeeded" and run.output == [1, 4, 9, 16, 25, 36]
    assert progress(run) == [{"completed": i, "total": 6} for i in range(7)]


def test_foreach__without_a_worker_to_run_it_the_next_item_is_queued_and_enqueued(engine_db):
    run = cf.squares.start([1, 2, 3])
    sr = engine.claim(run.step("square_item[0]").pk, "me:1")
    jobs_before = dispatch.get_queue("default").job_ids

    ok, nxt = engine.complete_and_take_next(sr, 1)

    third = run.step("square_item[2]")
    assert ok and nxt is None and third.status == StepStatus.QUEUED
    assert dispatch.get_queue("default").job_ids == [*jobs_before, dispatch.job_id(third.pk)]
    run = finished(run)
    assert run.status == "succeeded" and run.output == [1, 4, 9]
    assert progress(run) == [{"completed": i, "total": 3} for i in range(4)]
