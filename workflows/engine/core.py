"""Shared pieces of every transition: locking, saving with the run's derived status, ending a run."""

from __future__ import annotations

import logging
import traceback as tb_module
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import conf
from ..definition import registry
from ..exceptions import OutputTooLarge, UnknownWorkflow, WorkflowVersionError
from ..store import statements, values
from ..store.journal import Journal
from ..store.models import RUN_ACTIVE, STEP_HOLDS_SLOT, STEP_OPEN, Run, RunStatus, StepRun, StepStatus
from . import dispatch, outages

if TYPE_CHECKING:
    from ..definition.graph import Graph

log = logging.getLogger("workflows.engine")

# Steps that an ended run cancels at once. A running step is left to its worker, whose heartbeat sees that the
# run ended and interrupts it; it then reports `interrupted` and frees its slot (or its lease expires).
CANCELABLE = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.WAITING, StepStatus.SUSPENDED)
RUN_FIELDS = [
    "status", "cursor", "last_seq", "error", "traceback", "state", "started_at", "finished_at", "updated_at",
]  # fmt: skip
# written only by the transition that sets them (succeed_run): a loaded run's output may be a stored-once value
OUTPUT_FIELDS = ["output", "output_ref"]


def error_of(exc: BaseException, step: str = "") -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__, "step": step}


def check_output(value: Any, step: str) -> int:
    """The size of an output as JSON; OutputTooLarge past ``MAX_OUTPUT_BYTES`` (nothing is stored)."""
    size = values.size_of(value)
    limit = conf.get("MAX_OUTPUT_BYTES")
    if size > limit:
        raise OutputTooLarge(f"The output of {step!r} is {size} bytes of JSON: MAX_OUTPUT_BYTES is {limit}")
    return size


def traceback_of(exc: BaseException) -> str:
    return "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__))


def graph_for(run: Run) -> Graph:
    """The graph of the version this run started with (several versions may be committed at once);
    WorkflowVersionError when that version is not deployed in this process."""
    name = run.workflow.name
    try:
        return registry.get(name, version=run.version).graph
    except UnknownWorkflow:
        deployed = ", ".join(f.version for f in registry.versions(name)) or "none"
        raise WorkflowVersionError(
            f"Run {run.pk} started on version {run.version} of workflow {name!r}, which is not deployed in this "
            f"process (deployed: {deployed}). Deploy version {run.version} again alongside the new one (keep its "
            f"definition committed) until its runs finish"
        ) from None


def graph_or_fail(run: Run, journal: Journal, step: str = "") -> Graph | None:
    """The run's graph, or None after failing the run with WorkflowVersionError."""
    try:
        return graph_for(run)
    except WorkflowVersionError as exc:
        fail_run(run, error_of(exc, step), "", journal)
        return None


def lock(run_id: int) -> Run:
    """Lock the run row (not its workflow's) for the rest of the transaction."""
    run = statements.lock_run(run_id)  # with the workflow's name; its graph and schemas load only if read
    run._locked_status = run.status
    return run


def set_step(sr: StepRun, expect: tuple[str, ...], **fields: Any) -> bool:
    """Compare-and-set a StepRun: apply ``fields`` only if its status is still one of ``expect``."""
    attempt = sr.attempt
    for k, v in fields.items():
        setattr(sr, k, v)
    return bool(statements.update_fields(sr, list(fields), where={"status": tuple(expect), "attempt": attempt}))


def running_fields(worker: str, now: datetime) -> dict[str, Any]:
    """What makes a step ``running`` for ``worker`` (claimed from the queue, or handed a slot): its start, its
    lease and the worker's name."""
    lease = now + timedelta(seconds=conf.get("LEASE_SECONDS"))
    return {"status": StepStatus.RUNNING, "started_at": now, "lease_expires_at": lease, "worker": worker[:200]}


def pump_after_commit(pools: set[str]) -> None:
    """Admit ready steps of these pools once the current transaction commits (one pump per transaction)."""
    pools = {p for p in pools if p}
    if not pools:
        return
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        dispatch.pump(pools)
        return
    outermost = conn.atomic_blocks[0]
    pending = getattr(conn, "_workflows_pump", None)
    if pending is None or pending[0] is not outermost:  # a new transaction (the last one may have rolled back)
        pending = conn._workflows_pump = (outermost, set())

        outages.on_commit(lambda pools=pending[1]: dispatch.pump(set(pools)), "pool admission after commit")
    pending[1].update(pools)


def _tell_parent(child_id: int) -> None:
    """Mirror a child run's new status on its parent: ``actions.child_changed``, put here by the package (core
    cannot import actions, which imports core)."""


def _schedule_hooks(run: Run, journal: Journal, graph: Graph | None = None) -> None:
    """Create the completion hooks' rows of a run that just ended: ``hooks.schedule``, put here by the package
    (core cannot import hooks, which imports advance, which imports core)."""


def save(run: Run, journal: Journal, derive: bool = True, present: set[str] | None = None) -> None:
    """Write the run (with its status derived from its open steps, or from ``present``, statuses known to be
    among them) and the journal; tell a parent run."""
    if run.status in RUN_ACTIVE and derive:
        _derive_status(run, journal, present)
    journal.flush()
    if getattr(run, "_output_set", False):  # the value in memory, null in the row when it is stored elsewhere
        output = run.output
        run.output = None if run.output_ref is not None else output
        statements.update_fields(run, RUN_FIELDS + OUTPUT_FIELDS)
        run.output, run._output_set = output, False
    else:
        statements.update_fields(run, RUN_FIELDS)
    if run.parent_step_id and run.status != getattr(run, "_locked_status", None):
        run_id = run.pk
        outages.on_commit(lambda: _tell_parent(run_id), "telling a parent run of its child's new status")
    run._locked_status = run.status


def _derive_status(run: Run, journal: Journal, present: set[str] | None = None) -> None:
    if present is None:
        open_steps = StepRun.objects.filter(run=run, status__in=STEP_OPEN).order_by()  # no ordering in the DISTINCT
        present = set(open_steps.values_list("status", flat=True).distinct())
    if StepStatus.RUNNING in present:
        status = RunStatus.RUNNING
    elif present & {StepStatus.PENDING, StepStatus.QUEUED}:
        status = RunStatus.RUNNING if run.started_at else RunStatus.PENDING
    elif StepStatus.SUSPENDED in present:
        status = RunStatus.SUSPENDED
    elif StepStatus.WAITING in present:
        status = RunStatus.WAITING
    else:
        return
    if status == run.status:
        return
    if run.started_at is None and status != RunStatus.PENDING:
        run.started_at = timezone.now()
        if status == RunStatus.RUNNING:
            run.status = status
            return journal.add("run_started")
    run.status = status
    journal.add(f"run_{status}")


def step_started(run: Run, journal: Journal) -> None:
    """A step of the run is running now: the run is running (no query needed to derive it)."""
    if run.status in RUN_ACTIVE:
        _derive_status(run, journal, {StepStatus.RUNNING})


def succeed_run(run: Run, graph: Graph, data: Any, journal: Journal, ref: int | None = None) -> None:
    """The run succeeded with ``data`` (stored at ``ref`` if large: the run's output refers to it when the
    workflow's output type leaves it unchanged)."""
    from ..exceptions import InvalidInput

    try:
        output = data if graph.output.is_any else graph.output.dump(graph.output.validate(data, "workflow output"))
    except InvalidInput as exc:
        return fail_run(run, {"type": "InvalidOutput", "message": str(exc), "step": ""}, "", journal)
    run.status, run.output, run.finished_at = RunStatus.SUCCEEDED, output, timezone.now()
    run.output_ref = ref if ref is not None and (output is data or output == data) else None
    run._output_set = True
    run.started_at = run.started_at or run.finished_at
    cancel_open(run, journal)
    journal.add("run_succeeded", output=values.brief(output, "output"), duration=run.duration)
    _schedule_hooks(run, journal, graph)


def fail_run(run: Run, error: dict[str, Any], traceback: str, journal: Journal) -> None:
    run.status, run.error, run.traceback, run.finished_at = RunStatus.FAILED, error, traceback, timezone.now()
    run.started_at = run.started_at or run.finished_at
    cancel_open(run, journal)
    journal.add("run_failed", error=error, duration=run.duration)
    _schedule_hooks(run, journal)


def cancel_run(run: Run, journal: Journal, reason: str = "", by: str | None = None) -> None:
    run.status, run.finished_at = RunStatus.CANCELED, timezone.now()
    cancel_open(run, journal)
    extra = {**({"reason": reason} if reason else {}), **({"by": by} if by else {})}  # by: who canceled it
    journal.add("run_canceled", duration=run.duration, **extra)
    _schedule_hooks(run, journal)


def cancel_open(run: Run, journal: Journal) -> None:
    """Cancel the run's open steps (not running ones: their workers stop them) and its child runs."""
    rows = list(
        StepRun.objects.filter(
            Q(status__in=CANCELABLE) | Q(kind="workflow", status=StepStatus.RUNNING), run=run
        ).values_list("id", "path", "pool", "status", "kind")
    )
    if not rows:
        return
    StepRun.objects.filter(pk__in=[r[0] for r in rows]).update(status=StepStatus.CANCELED, finished_at=timezone.now())
    for _, path, _, _, _ in rows:
        journal.add("step_canceled", path)
    pump_after_commit({pool for _, _, pool, status, _ in rows if status in STEP_HOLDS_SLOT})
    nested = [r[0] for r in rows if r[4] == "workflow"]
    if nested:
        for child_id in (
            Run.objects.filter(parent_step_id__in=nested, status__in=RUN_ACTIVE)
            .order_by("pk")
            .values_list("pk", flat=True)
        ):
            child = lock(child_id)
            child_journal = Journal(child)
            cancel_run(child, child_journal, reason="parent run ended")
            save(child, child_journal)
