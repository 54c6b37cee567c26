from tests.testapp import flows
from workflows.testing import drain


def test_counter(engine_db):
    run = flows.counter.start({"value": 1})
    drain(timeout=10)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.output == {"value": 3}


def test_fan(engine_db):
    run = flows.fan.start({"value": 2})
    drain(timeout=10)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.output == {"big": "big 15"}
