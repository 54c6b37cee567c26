"""A real worker dies at the end of a run with completion hooks: the hooks still run, each exactly once."""

from __future__ import annotations

import pytest

from tests import invariants
from tests.testapp import hook_flows
from workflows.models import RunEvent, RunStatus

from .conftest import FAST, SIMPLE, attempts, wait_for
from .test_crash_points import assert_clean, crash_env, crashed

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "point, executed",
    [
        # the transaction ending the run never committed: the body runs again, then the hooks once each
        ("complete_before_commit", {"hk_body": [1, 2], "hk_success": [1], "hk_finish": [1]}),
        # it committed and handed its slot to on_success, claimed for the dying worker, never started
        ("handed_over", {"hk_body": [1], "hk_success": [2], "hk_finish": [1]}),
        # it committed with the hooks queued, and the worker died before making their RQ jobs
        ("before_enqueue", {"hk_body": [1], "hk_success": [1], "hk_finish": [1]}),
    ],
)
def test_hook_crash__a_worker_dying_as_the_run_ends_loses_no_hook_and_runs_none_twice(live, tmp_path, point, executed):
    env = crash_env(point, tmp_path)
    if point == "before_enqueue":  # a worker enqueues the hooks only when it does not run one itself
        env["WORKFLOWS_EAGER_SECONDS"] = "0"
    if point == "handed_over":  # however loaded the machine, the body's worker takes on_success itself
        env["WORKFLOWS_EAGER_SECONDS"] = "60"
    doomed = live.worker(SIMPLE, env=env)
    live.recovery(env=FAST)

    run = hook_flows.hooked.start({"value": 1})
    crashed(doomed, tmp_path)
    live.worker(SIMPLE, env=FAST)

    run = run.wait(60, hooks=True)
    assert run.status == RunStatus.SUCCEEDED and run.output == {"value": 2, "pause": 0.0}
    wait_for(lambda: invariants.executions(run.pk) == executed, 30, what=f"executions {executed}")
    assert run.step("hk_success").output == run.output
    assert run.step("hk_finish").output == {"status": "succeeded", "output": run.output, "error": None}
    if point == "handed_over":  # its attempt 1 was claimed by the dead worker: WorkerLost, not the hook's retries
        assert attempts(run, "hk_success") == [(1, "failed", "WorkerLost"), (2, "succeeded", None)]
    assert RunEvent.objects.filter(run=run, kind="hook_scheduled").count() == 2
    assert RunEvent.objects.filter(run=run, kind="run_succeeded").count() == 1
    assert_clean(run)
