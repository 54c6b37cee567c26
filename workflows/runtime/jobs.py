"""The RQ entry point: claim a StepRun, run the user's function, report the outcome to the engine."""

from __future__ import annotations

import logging
import os
import socket
import time

from django.db import close_old_connections

from .. import conf, engine, faults
from ..definition.context import StepContext
from ..definition.schema import jsonable
from ..engine import policy
from ..engine.publication import holding
from ..exceptions import Bail, InvalidInput, NonRetryableError, StepInterrupted, StepTimeout, Suspend, WorkflowsError
from ..store.models import StepRun
from . import observe, watchdog
from .aio import call_body
from .retrying import retrying
from .watchdog import Watchdog

log = logging.getLogger(__name__)
eager_deadline = float("inf")  # monotonic time after which no job runs a successor itself (testing.drain sets it)


def worker_name(pid: int | None = None) -> str:
    """The name a step running in process ``pid`` (this one by default) is claimed under (``StepRun.worker``)."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def execute_step(step_run_id: int) -> None:
    """Run one step attempt. A job that cannot claim its StepRun (duplicate, late, canceled) just returns."""
    close_old_connections()
    try:
        _execute(int(step_run_id))
    finally:
        close_old_connections()


def _execute(step_run_id: int) -> None:
    """Claim and run the step; then, while the job is young, the successors it hands its slot to (``handoff``):
    they run here at once, without a trip through Redis. Later ones go to the queue, so a long chain of fast
    steps cannot keep a worker from the other jobs waiting for it. Their transitions' publications are held
    back a few milliseconds and go out together (``engine.publication.holding``)."""
    with holding(conf.live("HOLD_SECONDS")):
        _claim_and_run(step_run_id)


def _claim_and_run(step_run_id: int) -> None:
    name = worker_name()
    sr = retrying(engine.claim, step_run_id, name)
    if sr is None:
        log.info("step run %s is not claimable; skipped", step_run_id)
        return
    eager_until = min(time.monotonic() + float(conf.get("EAGER_SECONDS")), eager_deadline)
    while sr is not None:
        sr = _run(sr, eager_until)
        if sr is not None:
            faults.point("handed_over")  # the successor is claimed for this worker, committed, not started


def _run(sr: StepRun, eager_until: float) -> StepRun | None:
    """Run a claimed step and report its outcome; the successor claimed for this worker (before
    ``eager_until``), if any. Its log lines, trace span and metrics say which attempt it is (``observe``)."""
    with observe.attempt(sr) as seen:
        return _run_attempt(sr, eager_until, seen)


def _run_attempt(sr: StepRun, eager_until: float, seen: observe.Attempt) -> StepRun | None:
    try:
        graph = engine.graph_for(sr.run)
        node = graph.blocks[sr.block].node(sr.step_id)
        run_input = graph.typed_input(sr.run.input)
        resume = node.step.resume
        resume_data = resume.validate(sr.resume_data) if resume and sr.resume_data is not None else sr.resume_data
        state = graph.state.validate(sr.run.state) if graph.state and sr.run.state is not None else sr.run.state
        timeout = policy.timeout(node)
    except WorkflowsError as exc:
        seen.ended("failed", exc)
        retrying(engine.fail, sr, exc, retryable=False, traceback="")
        return None
    ctx = StepContext(
        run_id=sr.run_id, step_id=sr.step_id, path=sr.path, attempt=sr.attempt, run_input=run_input,
        resume_data=resume_data, suspend_payload=sr.suspend_payload, step_run_id=sr.pk, block=sr.block,
        _state={"value": state, "spec": graph.state},
    )  # fmt: skip
    step = node.step
    try:
        with Watchdog(sr, timeout, ctx._cancel) as dog:
            data = step.input.validate(sr.input, f"input of step {sr.path!r}")
            result = call_body(step, ctx, data, dog)
        output = step.output.dump(result, f"output of step {sr.path!r}")
    except Bail as bail:
        seen.ended("succeeded")
        retrying(engine.complete, sr, jsonable(bail.output), bail=True)
    except Suspend as suspend:
        seen.ended("suspended")
        retrying(engine.suspend, sr, jsonable(suspend.payload), suspend.label)
    except StepInterrupted as exc:
        if exc.reason == "timeout":
            timeout = StepTimeout(f"Step {sr.path!r} timed out after {timeout:g}s (attempt {sr.attempt})")
            seen.ended("failed", timeout)
            retrying(engine.fail, sr, timeout, traceback=engine.traceback_of(exc))
        elif exc.reason == "shutdown":  # its worker is stopping: the step runs again elsewhere, retries untouched
            seen.ended("interrupted", exc)
            retrying(engine.hand_back, sr, "worker shutdown", engine.traceback_of(exc))
        else:
            seen.ended("canceled")
            retrying(engine.interrupted, sr)
    except (InvalidInput, NonRetryableError) as exc:
        seen.ended("failed", exc)
        retrying(engine.fail, sr, exc, retryable=False)
    except Exception as exc:
        seen.ended("failed", exc)
        retrying(engine.fail, sr, exc)
    else:
        faults.point("step_returned")
        # the successor runs in this job only while it is young, in a workflow that allows it, after a step that
        # is not isolated (the engine queues an isolated successor itself); a stopping worker takes no more
        eager = time.monotonic() < eager_until and graph.eager and not step.isolated and not watchdog.shutting_down()
        worker = sr.worker if eager else None
        return retrying(engine.complete_and_take_next, sr, output, worker=worker)[1]
    return None
