"""A step attempt's life in a worker: claim, then complete, fail, suspend or stop; or its worker is lost or shuts
down, and it runs again (``budgets``: on a retry budget of its own, not the step's retries)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import faults
from ..exceptions import InvalidTransition, OutputTooLarge, WorkerLost, WorkerShutdown, WorkflowVersionError
from ..store import statements, values
from ..store.journal import Journal
from ..store.models import RUN_ACTIVE, Run, RunStatus, StepRun, StepStatus
from . import budgets, core, handoff, hooks, outages, policy, substeps
from .advance import after_success
from .core import (
    check_output,
    error_of,
    fail_run,
    graph_for,
    graph_or_fail,
    lock,
    log,
    pump_after_commit,
    running_fields,
    save,
    set_step,
    step_started,
    succeed_run,
    traceback_of,
)


class _Raced(Exception):
    """The step was claimed by another job between the run's seq and the step's compare-and-set: roll back."""


def claim(step_run_id: int, worker: str) -> StepRun | None:
    """queued -> running under a lease. None when not claimable (a duplicate, late or canceled job)."""
    if statements.can_return():
        try:
            return _claim_in_running_run(step_run_id, worker)
        except _Raced:
            return None
        except _NotRunning:
            pass
    sr = StepRun.objects.filter(pk=step_run_id, status=StepStatus.QUEUED).first()
    if sr is None:
        return None
    with transaction.atomic():
        run = lock(sr.run_id)
        if not set_step(sr, (StepStatus.QUEUED,), **running_fields(worker, timezone.now())):
            return None
        journal = Journal(run)
        journal.add("step_running", sr.path, attempt=sr.attempt, worker=sr.worker)
        step_started(run, journal)
        save(run, journal, derive=False)
    sr.run = run
    if sr.input_ref is not None:  # a large input stored once: read it for the step (in memory only)
        sr.input = values.resolve(run, sr.input_ref)
    return sr


class _NotRunning(Exception):
    """The step is not queued, or its run is neither pending nor running (it ended, or waits): the full claim."""


def _claim_in_running_run(step_run_id: int, worker: str) -> StepRun:
    """The claim of a step of a run that is running or about to start, the usual case: the run row is not read
    and rewritten (its status, start and next journal seqs are set in one statement that also locks it, in the
    usual order: run, then step). Three statements: the run, the step's compare-and-set returning its row, the
    journal events."""
    with transaction.atomic():
        taken = statements.start_step_of(step_run_id, StepStatus.QUEUED, RunStatus.PENDING, RunStatus.RUNNING)
        if taken is None:
            raise _NotRunning
        run, started = taken
        sr = statements.set_step_returning(step_run_id, StepStatus.QUEUED, running_fields(worker, timezone.now()))
        if sr is None:
            raise _Raced
        run.last_seq -= 2 if started else 1  # the seqs taken above are these events'
        run._locked_status = run.status
        journal = Journal(run)
        journal.add("step_running", sr.path, attempt=sr.attempt, worker=sr.worker)
        if started:
            journal.add("run_started")
            if run.parent_step_id:  # as ``save`` does when a run's status changes
                outages.on_commit(lambda: core._tell_parent(run.pk), "telling a parent run of its child's new status")
        journal.flush()
    sr.run = run
    if sr.input_ref is not None:
        sr.input = values.resolve(run, sr.input_ref)
    return sr


def complete(sr: StepRun, output: Any, *, bail: bool = False) -> bool:
    """running -> succeeded, then advance the run. False (nothing changes) if the step is no longer running."""
    return complete_and_take_next(sr, output, bail=bail)[0]


def complete_and_take_next(
    sr: StepRun, output: Any, *, bail: bool = False, worker: str | None = None
) -> tuple[bool, StepRun | None]:
    """``complete``; the step's pool slot goes to its successor if it is ready now (``handoff``). With
    ``worker``, that successor is claimed for ``worker`` and returned, to be run by it at once."""
    try:
        size = check_output(output, sr.path)
    except OutputTooLarge as exc:
        fail(sr, exc, retryable=False, traceback="")
        return False, None
    # a large output equal to the step's input (a step passing its data along) refers to where that is stored
    same = sr.input_ref is not None and size > values.inline_limit() and (output is sr.input or output == sr.input)
    ref = sr.input_ref if same else None
    with transaction.atomic():
        run = lock(sr.run_id)
        fields = {"output": None if same else output, "output_ref": ref}
        if not set_step(sr, (StepStatus.RUNNING,), status=StepStatus.SUCCEEDED, finished_at=timezone.now(), **fields):
            log.info("ignored completion of %s: no longer running", sr)
            return False, None
        sr.output, sr._output_root = output, (ref if same else (sr.pk if size > values.inline_limit() else None))
        journal = Journal(run)
        brief = values.brief(output, f"steps/{sr.pk}/output", size)
        journal.add("step_succeeded", sr.path, attempt=sr.attempt, output=brief, duration=sr.duration)
        graph = graph_or_fail(run, journal, sr.path) if run.status in RUN_ACTIVE else None
        slot = handoff.offer(journal, sr.pool, worker, sr.concurrency_key, sr.priority)
        if graph and bail:
            succeed_run(run, graph, output, journal, values.output_root(sr))
        elif graph:
            after_success(run, graph, sr, journal)
        if slot.taker is None:
            pump_after_commit({sr.pool})
        save(run, journal, present={slot.taker.status} if slot.taker else None)
        faults.point("complete_before_commit")
    nxt = slot.taker if slot.taker is not None and slot.taker.status == StepStatus.RUNNING else None
    if nxt is not None:
        nxt.run = run
    return True, nxt


def fail(sr: StepRun, exc: BaseException, *, retryable: bool = True, traceback: str | None = None) -> bool:
    """running -> failed; a retry after its backoff if attempts remain, else the run fails. An exception with a
    ``retry_after`` (seconds; a provider's ``Retry-After``, e.g. pydantic-ai's ``ModelHTTPError``) delays the
    retry by at least that."""
    tb = traceback_of(exc) if traceback is None else traceback
    retry_after = getattr(exc, "retry_after", None)
    at_least = float(retry_after) if isinstance(retry_after, int | float) and retry_after > 0 else 0.0
    with transaction.atomic():
        run = lock(sr.run_id)
        journal = Journal(run)
        expect = (StepStatus.RUNNING,)
        done = on_failure(run, sr, error_of(exc, sr.path), retryable, tb, expect, journal, at_least=at_least)
        if done:
            save(run, journal)
    return done


def lease_expired(step_run_id: int) -> bool:
    """A running step whose lease ran out: its worker is gone. A failed attempt of type WorkerLost."""
    sr = StepRun.objects.filter(pk=step_run_id, status=StepStatus.RUNNING, lease_expires_at__lt=timezone.now()).first()
    if sr is None:
        return False
    message = f"Worker {sr.worker or '?'} stopped renewing the lease of {sr.path} (attempt {sr.attempt})"
    return _lost(sr, message, lease=True)


def worker_lost(worker: str, why: str) -> int:
    """The process ``worker`` (a name from ``running_fields``) is known to be dead, such as a forking worker's work
    horse that died: each step still running for it fails at once as WorkerLost instead of waiting for its lease.
    Returns how many."""
    rows = list(StepRun.objects.filter(status=StepStatus.RUNNING, worker=worker[:200]).order_by("pk"))
    return sum(_lost(sr, f"{why} while running {sr.path} (attempt {sr.attempt})", lease=False) for sr in rows)


def _lost(sr: StepRun, message: str, *, lease: bool) -> bool:
    with transaction.atomic():
        run = lock(sr.run_id)
        expired = StepRun.objects.filter(pk=sr.pk, attempt=sr.attempt, lease_expires_at__lt=timezone.now())
        if lease and not expired.exists():
            return False  # renewed meanwhile
        journal = Journal(run)
        error = error_of(WorkerLost(message), sr.path)
        done = on_failure(run, sr, error, True, "", (StepStatus.RUNNING,), journal, lost=True)
        if done:
            save(run, journal)
        faults.point("lease_expired_before_commit" if lease else "worker_lost_before_commit")
    return done


def hand_back(sr: StepRun, reason: str = "worker shutdown", traceback: str = "") -> bool:
    """A running step stopped by its worker's shutdown (it outlasted the grace period): the attempt fails as
    WorkerShutdown, journaled as ``step_interrupted`` with ``reason``, and runs again at once, for another worker,
    on the SHUTDOWN_RETRIES budget (not the step's retries)."""
    with transaction.atomic():
        run = lock(sr.run_id)
        journal = Journal(run)
        message = f"Worker {sr.worker or '?'} shut down while running {sr.path} (attempt {sr.attempt})"
        error = error_of(WorkerShutdown(message), sr.path)
        done = on_failure(run, sr, error, True, traceback, (StepStatus.RUNNING,), journal, reason=reason)
        if done:
            save(run, journal)
    return done


def on_failure(
    run: Run, sr: StepRun, error: dict, retryable: bool, traceback: str, expect: tuple[str, ...], journal: Journal,
    *, reason: str = "", at_least: float = 0.0, lost: bool = False,
) -> bool:  # fmt: skip
    """Inside a transition holding the run's lock: the attempt failed; retry it (after its backoff, and at least
    ``at_least`` seconds: a provider's Retry-After) or fail the run. ``reason``: why its worker interrupted it
    (journaled as ``step_interrupted``); ``lost``: its worker is gone (its open sub-steps end as lost too)."""
    ended = run.status not in RUN_ACTIVE and not sr.hook  # a completion hook runs after its run ended
    status = StepStatus.CANCELED if ended else StepStatus.FAILED
    if not set_step(sr, expect, status=status, error=error, traceback=traceback, finished_at=timezone.now()):
        log.info("ignored failure of %s: no longer %s", sr, "/".join(expect))
        return False
    pump_after_commit({sr.pool})
    if sr.kind == "step":  # an agent step's model requests and tool calls in flight end with it
        substeps.close_open(run.pk, sr.block, sr.path, lost=lost)
    if ended:
        journal.add("step_canceled", sr.path, attempt=sr.attempt)
        return True
    if reason:
        journal.add("step_interrupted", sr.path, attempt=sr.attempt, reason=reason)
    journal.add("step_failed", sr.path, attempt=sr.attempt, error=error)
    graph = _hook_graph(run, sr, journal) if sr.hook else graph_or_fail(run, journal, sr.path)
    if graph is None:
        return True
    block = graph.blocks[sr.block]
    node = block.node(sr.step_id) if sr.kind == "step" else None
    charge = budgets.charge_attempt(sr, error.get("type"), policy.retries(node)) if retryable and node else None
    if charge is not None and charge.retry:
        delay = 0.0 if charge.infrastructure else max(policy.backoff(node).delay(charge.spent), at_least)
        due = timezone.now() + timedelta(seconds=delay)
        StepRun.objects.create(
            run=run, block=sr.block, path=sr.path, step_id=sr.step_id, kind=sr.kind, index=sr.index,
            attempt=sr.attempt + 1, status=StepStatus.PENDING, pool=sr.pool, due_at=due, input_ref=sr.input_ref,
            input=None if sr.input_ref is not None else sr.input, hook=sr.hook,
            priority=sr.priority, concurrency_key=sr.concurrency_key, key_limit=sr.key_limit,
            resume_data=sr.resume_data, suspend_payload=sr.suspend_payload, label=sr.label,
        )  # fmt: skip
        extra = {"budget": charge.budget, "left": charge.allowed - charge.spent} if charge.infrastructure else {}
        retry = {"attempt": sr.attempt + 1, "delay": round(delay, 3), "due_at": due.isoformat(), "error": error}
        journal.add("step_retrying", sr.path, **retry, **extra)
    else:
        if charge is not None and charge.infrastructure:  # a poison pill, or a step no worker lets finish
            spent = f"{charge.spent} such attempts; {charge.budget} is {charge.allowed}"
            error = {**error, "message": f"{error['message']} ({spent})"}
        if sr.hook:
            hooks.failed(journal, sr.path, error)
        else:
            fail_run(run, error, traceback, journal)
    return True


def _hook_graph(run: Run, sr: StepRun, journal: Journal):
    """The graph of a hook's run, which has ended; None after journaling the hook's failure without it."""
    try:
        return graph_for(run)
    except WorkflowVersionError as exc:
        hooks.failed(journal, sr.path, error_of(exc, sr.path))
        return None


def interrupted(sr: StepRun) -> bool:
    """A running step stopped because its run ended (cancel, a failure elsewhere, bail): running -> canceled."""
    with transaction.atomic():
        run = lock(sr.run_id)
        if not set_step(sr, (StepStatus.RUNNING,), status=StepStatus.CANCELED, finished_at=timezone.now()):
            return False
        journal = Journal(run)
        journal.add("step_canceled", sr.path, attempt=sr.attempt)
        pump_after_commit({sr.pool})
        save(run, journal)
    return True


def suspend(sr: StepRun, payload: Any, label: str | None) -> bool:
    """running -> suspended (``ctx.suspend``): the step waits for ``run.resume`` and then runs again. A completion
    hook cannot: its run has ended, so nothing could resume it; it fails at once instead."""
    if sr.hook:
        why = InvalidTransition(f"Completion hook {sr.path!r} cannot suspend: its run has ended")
        return fail(sr, why, retryable=False)
    with transaction.atomic():
        run = lock(sr.run_id)
        fields = {"status": StepStatus.SUSPENDED, "suspend_payload": payload, "label": (label or "")[:100]}
        if not set_step(sr, (StepStatus.RUNNING,), finished_at=timezone.now(), **fields):
            return False
        journal = Journal(run)
        journal.add("step_suspended", sr.path, attempt=sr.attempt, payload=payload, label=label)
        pump_after_commit({sr.pool})
        save(run, journal)
    return True
