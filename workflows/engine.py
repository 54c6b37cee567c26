"""The only code that changes a status.

Every transition is one ``transaction.atomic()``: lock the run row, compare-and-set the step's status, record
the output, append ``RunEvent``s with the run's next seqs, decide what is ready next and create those
StepRuns. RQ jobs are enqueued and events published only after commit. A transition whose compare-and-set
finds the step no longer in the expected state does nothing (late, duplicate or recovered jobs are harmless).
"""

from __future__ import annotations

import logging
import traceback as tb_module
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import conf, registry
from .context import Context
from .events import Journal
from .exceptions import InvalidInput, InvalidTransition, UnknownWorkflow, WorkflowVersionError
from .models import (
    RUN_ACTIVE,
    RUN_TERMINAL,
    STEP_HOLDS_SLOT,
    Pool,
    Run,
    RunStatus,
    StepRun,
    StepStatus,
)
from .schema import jsonable

if TYPE_CHECKING:
    from .dsl import Workflow
    from .graph import Block, Graph, Node

log = logging.getLogger(__name__)

# Steps that a finished run cancels at once. A running step is left to its worker, whose heartbeat sees the
# run has ended and interrupts it; it then reports `interrupted` and frees its pool slot (or its lease expires).
CANCELABLE = (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.WAITING, StepStatus.SUSPENDED)
RUN_FIELDS = ["status", "cursor", "last_seq", "output", "error", "traceback", "started_at", "finished_at", "updated_at"]


def error_of(exc: BaseException, step: str = "") -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__, "step": step}


def traceback_of(exc: BaseException) -> str:
    return "".join(tb_module.format_exception(type(exc), exc, exc.__traceback__))


# --- helpers -------------------------------------------------------------------------------------------------


def workflow_name(run: Run) -> str:
    return run.workflow.name


def graph_for(run: Run) -> Graph:
    """The graph of the version this run started with; WorkflowVersionError when that code is gone."""
    name = workflow_name(run)
    try:
        flow = registry.get(name)
    except UnknownWorkflow:
        raise WorkflowVersionError(f"Workflow {name!r} is not deployed in this process") from None
    if flow.version != run.version:
        raise WorkflowVersionError(
            f"Run {run.pk} started on version {run.version} of {name!r}; this process has {flow.version}"
        )
    return flow.graph


def _lock(run_id: int) -> Run:
    """Lock the run row (not its workflow's) for the rest of the transaction."""
    return Run.objects.select_for_update(of=("self",)).select_related("workflow").get(pk=run_id)


def _save(run: Run, journal: Journal) -> None:
    journal.flush()
    run.save(update_fields=RUN_FIELDS)


def _pump_after_commit(pools: set[str]) -> None:
    if pools:
        from . import dispatch

        transaction.on_commit(lambda: dispatch.pump(pools), robust=True)


def _set_step(sr: StepRun, expect: tuple[str, ...], **fields: Any) -> bool:
    """Compare-and-set a StepRun: apply ``fields`` only if its status is still one of ``expect``."""
    changed = StepRun.objects.filter(pk=sr.pk, status__in=expect, attempt=sr.attempt).update(**fields)
    for k, v in fields.items():
        setattr(sr, k, v)
    return bool(changed)


# --- start ---------------------------------------------------------------------------------------------------


def start(flow: Workflow, data: Any, *, user: Any = None, idempotency_key: str | None = None) -> Run:
    graph = flow.graph
    value = graph.typed_input(data)  # InvalidInput before anything is written
    input_json = jsonable(data) if graph.input.is_any else graph.input.dump(value)
    if idempotency_key is not None and not (isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= 255):
        raise InvalidInput("idempotency_key must be a non-empty string of at most 255 characters")
    workflow_id = registry.row_for(flow)
    if idempotency_key:
        existing = Run.objects.filter(workflow_id=workflow_id, idempotency_key=idempotency_key).first()
        if existing:
            return existing
    owner = user if user is not None and getattr(user, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            run = Run.objects.create(
                workflow_id=workflow_id,
                version=graph.version,
                input=input_json,
                created_by=owner,
                idempotency_key=idempotency_key,
            )
            journal = Journal(run)
            journal.add("run_created", input=input_json, version=graph.version)
            _enter(run, graph, 0, input_json, journal)
            _save(run, journal)
    except IntegrityError:
        if idempotency_key:  # a concurrent start with the same key won
            return Run.objects.get(workflow_id=workflow_id, idempotency_key=idempotency_key)
        raise
    return run


# --- advancing through blocks --------------------------------------------------------------------------------


def _typed_data(graph: Graph, index: int, data: Any) -> Any:
    return graph.typed_input(data) if index == 0 else graph.blocks[index - 1].typed(data)


def _enter(run: Run, graph: Graph, index: int, data: Any, journal: Journal) -> None:
    """Enter block ``index`` with ``data``; run inline blocks (map, branch conditions) and create step rows."""
    run_input = None
    while index < len(graph.blocks):
        block = graph.blocks[index]
        run.cursor = index
        if block.kind in ("map", "branch"):
            if run_input is None:
                run_input = graph.typed_input(run.input)
            try:
                ctx = Context(data=_typed_data(graph, index, data), run_input=run_input, run_id=run.pk)
            except InvalidInput as exc:
                return _fail_run(run, error_of(exc, block.id), traceback_of(exc), journal)
        if block.kind == "map":
            try:
                out = jsonable(block.fn(ctx))
            except Exception as exc:
                return _fail_run(run, error_of(exc, block.id), traceback_of(exc), journal)
            now = timezone.now()
            StepRun.objects.create(
                run=run,
                block=index,
                path=block.id,
                step_id=block.id,
                kind="map",
                status=StepStatus.SUCCEEDED,
                input=data,
                output=out,
                created_at=now,
                started_at=now,
                finished_at=now,
            )
            journal.add("step_succeeded", block.id, kind="map", attempt=1, output=out)
            data, index = out, index + 1
            continue
        nodes = list(block.nodes)
        if block.kind == "branch":
            taken = []
            for cond, node in zip(block.conditions, block.nodes, strict=True):
                try:
                    ok = bool(cond(ctx))
                except Exception as exc:
                    return _fail_run(run, error_of(exc, node.id), traceback_of(exc), journal)
                taken.append(ok)
            skipped = [n for n, ok in zip(block.nodes, taken, strict=True) if not ok]
            nodes = [n for n, ok in zip(block.nodes, taken, strict=True) if ok]
            _create_steps(run, block, skipped, data, journal, StepStatus.SKIPPED)
            if not nodes:
                data, index = {}, index + 1
                continue
        _create_steps(run, block, nodes, data, journal, StepStatus.PENDING)
        _pump_after_commit({n.pool for n in nodes})
        return
    _succeed_run(run, graph, data, journal)


def _create_steps(
    run: Run,
    block: Block,
    nodes: list[Node],
    data: Any,
    journal: Journal,
    status: str,
    attempt: int = 1,
    due_at=None,
) -> None:
    now = timezone.now()
    rows = [
        StepRun(
            run=run,
            block=block.index,
            path=n.id,
            step_id=n.id,
            attempt=attempt,
            status=status,
            pool=n.pool,
            input=data,
            due_at=due_at or now,
            created_at=now,
            finished_at=now if status == StepStatus.SKIPPED else None,
        )
        for n in nodes
    ]
    StepRun.objects.bulk_create(rows)
    for r in rows:
        journal.add(f"step_{status}", r.path, attempt=attempt)


def _block_done(run: Run, graph: Graph, block_index: int, journal: Journal) -> None:
    """After a step of the block succeeded: once none of its steps is open, move to the next block."""
    if StepRun.objects.filter(run=run, block=block_index).open().exists():
        return
    block = graph.blocks[block_index]
    outputs = dict(
        StepRun.objects.filter(run=run, block=block_index, status=StepStatus.SUCCEEDED).values_list("path", "output")
    )
    if block.kind == "step":
        data = outputs[block.nodes[0].id]
    else:  # parallel / branch: keyed by step id, in the order the block lists them
        data = {n.id: outputs[n.id] for n in block.nodes if n.id in outputs}
    _enter(run, graph, block_index + 1, data, journal)


def _succeed_run(run: Run, graph: Graph, data: Any, journal: Journal) -> None:
    try:
        output = data if graph.output.is_any else graph.output.dump(graph.output.validate(data, "workflow output"))
    except InvalidInput as exc:
        return _fail_run(run, {"type": "InvalidOutput", "message": str(exc), "step": ""}, "", journal)
    run.status, run.output, run.finished_at = RunStatus.SUCCEEDED, output, timezone.now()
    _cancel_open(run, journal)
    journal.add("run_succeeded", output=output, duration=run.duration)


def _fail_run(run: Run, error: dict[str, Any], traceback: str, journal: Journal) -> None:
    run.status, run.error, run.traceback, run.finished_at = RunStatus.FAILED, error, traceback, timezone.now()
    _cancel_open(run, journal)
    journal.add("run_failed", error=error, duration=run.duration)


def _cancel_open(run: Run, journal: Journal) -> None:
    rows = list(StepRun.objects.filter(run=run, status__in=CANCELABLE).values_list("id", "path", "pool", "status"))
    if not rows:
        return
    StepRun.objects.filter(pk__in=[r[0] for r in rows], status__in=CANCELABLE).update(
        status=StepStatus.CANCELED, finished_at=timezone.now()
    )
    for _, path, _, _ in rows:
        journal.add("step_canceled", path)
    _pump_after_commit({pool for _, _, pool, status in rows if status in STEP_HOLDS_SLOT})


# --- a step's life -------------------------------------------------------------------------------------------


def claim(step_run_id: int, worker: str) -> StepRun | None:
    """queued -> running under a lease. None when the step is not claimable (duplicate, late or canceled job)."""
    run_id = StepRun.objects.filter(pk=step_run_id).values_list("run_id", flat=True).first()
    if run_id is None:
        return None
    with transaction.atomic():
        run = _lock(run_id)
        now = timezone.now()
        lease = now + timedelta(seconds=conf.get("LEASE_SECONDS"))
        claimed = StepRun.objects.filter(pk=step_run_id, status=StepStatus.QUEUED).update(
            status=StepStatus.RUNNING, started_at=now, lease_expires_at=lease, worker=worker[:200]
        )
        if not claimed:
            return None
        sr = StepRun.objects.get(pk=step_run_id)
        journal = Journal(run)
        if run.status == RunStatus.PENDING:
            run.status, run.started_at = RunStatus.RUNNING, now
            journal.add("run_started")
        journal.add("step_running", sr.path, attempt=sr.attempt, worker=sr.worker)
        _save(run, journal)
    sr.run = run
    return sr


def complete(sr: StepRun, output: Any, *, bail: bool = False) -> bool:
    """running -> succeeded; advance the run. False (and nothing changes) if the step is no longer running."""
    with transaction.atomic():
        run = _lock(sr.run_id)
        now = timezone.now()
        if not _set_step(sr, (StepStatus.RUNNING,), status=StepStatus.SUCCEEDED, output=output, finished_at=now):
            log.info("ignored completion of %s: no longer running", sr)
            return False
        journal = Journal(run)
        journal.add("step_succeeded", sr.path, attempt=sr.attempt, output=output, duration=sr.duration)
        _pump_after_commit({sr.pool})
        if run.status in RUN_ACTIVE:
            try:
                graph = graph_for(run)
            except WorkflowVersionError as exc:
                _fail_run(run, error_of(exc, sr.path), "", journal)
            else:
                if bail:
                    _succeed_run(run, graph, output, journal)
                else:
                    _block_done(run, graph, sr.block, journal)
        _save(run, journal)
    return True


def fail(sr: StepRun, exc: BaseException, *, retryable: bool = True, traceback: str | None = None) -> bool:
    """running -> failed; retry after a backoff if attempts remain, else fail the run."""
    return _failed(sr, exc, retryable, traceback_of(exc) if traceback is None else traceback, (StepStatus.RUNNING,))


def lease_expired(step_run_id: int) -> bool:
    """A running step whose lease ran out: its worker is gone. Counts as a failed attempt (WorkerLost)."""
    from .exceptions import WorkerLost

    sr = StepRun.objects.filter(pk=step_run_id, status=StepStatus.RUNNING).first()
    if sr is None or sr.lease_expires_at is None or sr.lease_expires_at >= timezone.now():
        return False
    message = f"Worker {sr.worker or '?'} stopped renewing the lease of {sr.path} (attempt {sr.attempt})"
    return _failed(sr, WorkerLost(message), True, "", (StepStatus.RUNNING,), lease_before=timezone.now())


def _failed(
    sr: StepRun, exc: BaseException, retryable: bool, traceback: str, expect: tuple[str, ...], lease_before=None
) -> bool:
    error = error_of(exc, sr.path)
    with transaction.atomic():
        run = _lock(sr.run_id)
        now = timezone.now()
        if (
            lease_before is not None
            and not StepRun.objects.filter(pk=sr.pk, lease_expires_at__lt=lease_before).exists()
        ):
            return False  # renewed meanwhile
        ended = run.status not in RUN_ACTIVE
        status = StepStatus.CANCELED if ended else StepStatus.FAILED
        if not _set_step(sr, expect, status=status, error=error, traceback=traceback, finished_at=now):
            log.info("ignored failure of %s: no longer %s", sr, "/".join(expect))
            return False
        journal = Journal(run)
        _pump_after_commit({sr.pool})
        if ended:
            journal.add("step_canceled", sr.path, attempt=sr.attempt)
            _save(run, journal)
            return True
        journal.add("step_failed", sr.path, attempt=sr.attempt, error=error)
        try:
            node = graph_for(run).blocks[sr.block].node(sr.step_id)
        except WorkflowVersionError as version_exc:
            _fail_run(run, error_of(version_exc, sr.path), "", journal)
        else:
            if retryable and sr.attempt <= node.retries:
                delay = node.backoff.delay(sr.attempt)
                due = now + timedelta(seconds=delay)
                StepRun.objects.create(
                    run=run,
                    block=sr.block,
                    path=sr.path,
                    step_id=sr.step_id,
                    kind=sr.kind,
                    attempt=sr.attempt + 1,
                    status=StepStatus.PENDING,
                    pool=sr.pool,
                    input=sr.input,
                    due_at=due,
                )
                journal.add(
                    "step_retrying",
                    sr.path,
                    attempt=sr.attempt + 1,
                    delay=round(delay, 3),
                    due_at=due.isoformat(),
                    error=error,
                )
            else:
                _fail_run(run, error, traceback, journal)
        _save(run, journal)
    return True


def interrupted(sr: StepRun) -> bool:
    """A running step stopped because its run ended (cancel, failure elsewhere, bail): running -> canceled."""
    with transaction.atomic():
        run = _lock(sr.run_id)
        if not _set_step(sr, (StepStatus.RUNNING,), status=StepStatus.CANCELED, finished_at=timezone.now()):
            return False
        journal = Journal(run)
        journal.add("step_canceled", sr.path, attempt=sr.attempt)
        _pump_after_commit({sr.pool})
        _save(run, journal)
    return True


# --- run-level actions ---------------------------------------------------------------------------------------


def cancel(run_id: int) -> Run:
    """Cancel a run: open steps are canceled at once, running ones are interrupted by their workers."""
    with transaction.atomic():
        try:
            run = _lock(run_id)
        except Run.DoesNotExist:
            raise InvalidTransition(f"Run {run_id} does not exist") from None
        if run.status in RUN_TERMINAL:
            raise InvalidTransition(f"Run {run_id} is already {run.status}; only an active run can be canceled")
        journal = Journal(run)
        run.status, run.finished_at = RunStatus.CANCELED, timezone.now()
        _cancel_open(run, journal)
        journal.add("run_canceled", duration=run.duration)
        _save(run, journal)
    return run


# --- pools ---------------------------------------------------------------------------------------------------


def admit(pool: str, max_parallel: int) -> list[int]:
    """pending -> queued for as many due steps of ``pool`` as it has free slots. Returns the admitted ids.

    The pool row's lock serialises admissions across processes, so queued + running never exceeds the limit.
    Lock order is pool -> runs (by id) -> steps, and transitions never take a pool lock: no deadlock.
    """
    Pool.objects.get_or_create(name=pool, defaults={"max_parallel": max_parallel})
    with transaction.atomic():
        Pool.objects.select_for_update().filter(name=pool).update(max_parallel=max_parallel)
        busy = StepRun.objects.filter(pool=pool, status__in=STEP_HOLDS_SLOT).count()
        free = max_parallel - busy
        if free <= 0:
            return []
        now = timezone.now()
        candidates = list(
            StepRun.objects.filter(pool=pool, status=StepStatus.PENDING, due_at__lte=now)
            .order_by("due_at", "id")
            .values_list("id", "run_id", "path", "attempt")[:free]
        )
        if not candidates:
            return []
        runs = {
            r.pk: r for r in Run.objects.select_for_update().filter(pk__in={c[1] for c in candidates}).order_by("pk")
        }
        journals = {pk: Journal(run) for pk, run in runs.items()}
        admitted = []
        for sr_id, run_id, path, attempt in candidates:
            if StepRun.objects.filter(pk=sr_id, status=StepStatus.PENDING).update(
                status=StepStatus.QUEUED, queued_at=now
            ):
                admitted.append(sr_id)
                journals[run_id].add("step_queued", path, attempt=attempt)
        for pk, journal in journals.items():
            journal.flush()
            Run.objects.filter(pk=pk).update(last_seq=runs[pk].last_seq)
    return admitted
