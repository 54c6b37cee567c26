"""Log lines from inside a step carry its run id, step path and attempt (``workflows.logging``), as text or JSON."""

import json
import logging
import logging.config

import pytest
from django.conf import settings

from tests.testapp import observe_flows
from workflows import logging as wf_logging
from workflows.testing import drain


@pytest.fixture
def configure():
    """Apply ``workflows.logging.config(...)`` for one test (its handler writes to the captured stderr); the
    project's configuration comes back afterwards."""
    yield lambda **kwargs: logging.config.dictConfig(wf_logging.config(**kwargs))
    logging.config.dictConfig(settings.LOGGING)


def lines_with(text: str, err: str) -> list[str]:
    return [line for line in err.splitlines() if text in line]


def test_logging__a_step_s_lines_carry_run_step_and_attempt_in_text(engine_db, configure, capsys):
    configure(json=False)
    run = observe_flows.observed.start({"value": 7})
    drain()
    err = capsys.readouterr().err
    (user,) = lines_with("user line for 7", err)
    (ctx,) = lines_with("ctx line", err)
    for line in (user, ctx):
        assert f"[run {run.pk} step observed_work attempt 1]" in line
    assert " WARNING tests.observe " in user and " INFO workflows.step " in ctx


def test_logging__a_step_s_lines_carry_run_step_and_attempt_in_json(engine_db, configure, capsys, monkeypatch):
    monkeypatch.setenv("WORKFLOWS_LOG_JSON", "1")
    configure()  # the environment flag decides
    run = observe_flows.observed.start({"value": 8})
    drain()
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    user = [r for r in records if r["message"] == "user line for 8"]
    ctx = [r for r in records if r["message"] == "ctx line"]
    assert len(user) == len(ctx) == 1
    for record in (user[0], ctx[0]):
        assert (record["run_id"], record["step"], record["attempt"]) == (run.pk, "observed_work", 1)
    assert user[0]["logger"] == "tests.observe" and user[0]["level"] == "WARNING"
    assert ctx[0]["logger"] == "workflows.step"


def test_logging__lines_outside_a_step_have_no_step_fields(configure, capsys):
    configure(json=True)
    logging.getLogger("workflows.engine").warning("between steps")
    (line,) = lines_with("between steps", capsys.readouterr().err)
    record = json.loads(line)
    assert (record["run_id"], record["step"], record["attempt"]) == (None, None, None)
    configure(json=False)
    logging.getLogger("workflows.engine").warning("plain between steps")
    (line,) = lines_with("plain between steps", capsys.readouterr().err)
    assert line.endswith("WARNING workflows.engine plain between steps")


def test_logging__the_bound_attempt_reaches_every_logger(configure, capsys):
    configure(json=False)
    with wf_logging.bound(5, "a/b[2]", 3):
        logging.getLogger("workflows.runtime.jobs").warning("worker line")
    (line,) = lines_with("worker line", capsys.readouterr().err)
    assert "[run 5 step a/b[2] attempt 3] worker line" in line
