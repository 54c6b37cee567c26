"""Run-level actions (cancel, resume, events, state, restart) and the transitions timers and child runs cause."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import conf, faults, tracing
from ..definition.schema import jsonable
from ..exceptions import InvalidInput, InvalidTransition
from ..store import values
from ..store.journal import Journal
from ..store.models import RUN_ACTIVE, RUN_TERMINAL, InboundEvent, Run, RunStatus, StepRun, StepStatus
from .advance import after_success, block_output_ref, enter
from .core import cancel_run, graph_for, graph_or_fail, lock, pump_after_commit, save, set_step
from .inputs import accept, storable
from .steps import on_failure

NESTED_OPEN = (StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SUSPENDED)


def _get(run_id: int) -> Run:
    run = Run.objects.select_related("workflow").filter(pk=run_id).first()
    if run is None:
        raise InvalidTransition(f"Run {run_id} does not exist")
    return run


def _lock_active(run_id: int, action: str) -> Run:
    run = lock(run_id)
    if run.status in RUN_TERMINAL:
        raise InvalidTransition(f"Run {run_id} is already {run.status}; cannot {action}")
    return run


def cancel(run_id: int, *, by: str | None = None) -> Run:
    """Cancel a run and its child runs: open steps at once, running ones are interrupted by their workers.
    ``by`` (a user name) is recorded in the journal: the run page's history says who acted."""
    _get(run_id)
    with transaction.atomic():
        run = _lock_active(run_id, "cancel it")
        journal = Journal(run)
        cancel_run(run, journal, by=by)
        save(run, journal)
    return run


def resume(
    run_id: int, step: str | None = None, label: str | None = None, data: Any = None, *, by: str | None = None
) -> StepRun:
    """Resume a suspended step: it runs again from the top with ``ctx.resume_data``."""
    run = _get(run_id)
    if run.status != RunStatus.SUSPENDED and run.status in RUN_TERMINAL:
        raise InvalidTransition(f"Run {run_id} is {run.status}; only a suspended step can be resumed")
    if step and "." in step:  # "child.step": reach into a nested workflow's run
        head, rest = step.split(".", 1)
        return resume(_child_of(run, head).pk, rest, label, data, by=by)
    rows = list(run.steps.filter(status=StepStatus.SUSPENDED).order_by("pk"))
    if step:
        rows = [r for r in rows if step in (r.path, r.step_id)]
    if label:
        rows = [r for r in rows if r.label == label]
    if not rows:
        which = f" {step!r}" if step else (f" labelled {label!r}" if label else "")
        raise InvalidTransition(f"Run {run_id} has no suspended step{which}")
    if len(rows) > 1:
        paths = ", ".join(r.path for r in rows)
        raise InvalidTransition(f"{len(rows)} steps of run {run_id} are suspended ({paths}): name the one to resume")
    sr = rows[0]
    if sr.kind == "workflow":
        return resume(_child_of(run, sr.path).pk, None, label, data, by=by)
    node = graph_for(run).blocks[sr.block].node(sr.step_id)
    spec = node.step.resume
    accept(data, "resume data")
    resume_json = storable(spec.dump(spec.validate(data, "resume data")) if spec else jsonable(data), "resume data")
    if node.step.check_resume is not None:  # e.g. an agent step checks edited tool arguments (InvalidInput)
        node.step.check_resume(sr.suspend_payload, resume_json)
    with transaction.atomic():
        run = _lock_active(run_id, "resume it")
        fields = {"status": StepStatus.PENDING, "resume_data": resume_json, "due_at": timezone.now()}
        if not set_step(sr, (StepStatus.SUSPENDED,), started_at=None, finished_at=None, worker="", **fields):
            raise InvalidTransition(f"Step {sr.path!r} of run {run_id} is no longer suspended")
        journal = Journal(run)
        data = values.brief(resume_json, f"steps/{sr.pk}/resume_data")
        journal.add("step_resumed", sr.path, attempt=sr.attempt, data=data, **_by(by))
        journal.add("step_pending", sr.path, attempt=sr.attempt)
        pump_after_commit({sr.pool})
        save(run, journal)
    return sr


def _child_of(run: Run, step: str) -> Run:
    row = (
        run.steps.filter(kind="workflow", status__in=NESTED_OPEN).filter(path=step).order_by("-pk").first()
        or run.steps.filter(kind="workflow", status__in=NESTED_OPEN, step_id=step).order_by("-pk").first()
    )
    child = row and row.child_runs.order_by("-pk").first()
    if child is None:
        raise InvalidTransition(f"Run {run.pk} has no active nested workflow {step!r}")
    return child


def send_event(run_id: int, name: str, data: Any = None, *, by: str | None = None) -> None:
    """Deliver an event to a waiting ``wait_for_event(name)`` block, or keep it until the run gets there."""
    run = _get(run_id)
    blocks = graph_for(run).event_blocks(name) if isinstance(name, str) else []
    if not blocks:
        raise InvalidInput(f"Workflow {run.workflow.name!r} has no wait_for_event({name!r})")
    accept(data, f"event {name!r}")
    payload = storable(blocks[0].output.dump(blocks[0].output.validate(data, f"event {name!r}")), f"event {name!r}")
    size, limit = values.size_of(payload), conf.get("MAX_EVENT_BYTES")
    if size > limit:
        raise InvalidInput(f"Event {name!r} is {size} bytes of JSON: MAX_EVENT_BYTES is {limit}")
    with transaction.atomic():
        run = _lock_active(run_id, f"send it event {name!r}")
        journal = Journal(run)
        waiting = StepRun.objects.filter(run=run, kind="event", label=name, status=StepStatus.WAITING).first()
        inbound = InboundEvent.objects.create(run=run, name=name, data=payload, consumed_by=waiting)
        brief = values.brief(payload, f"events/{inbound.pk}", size)
        journal.add("event_received", waiting.path if waiting else "", event=name, data=brief, **_by(by))
        if waiting:
            set_step(
                waiting, (StepStatus.WAITING,), status=StepStatus.SUCCEEDED, output=payload, finished_at=timezone.now()
            )
            brief = values.brief(payload, f"steps/{waiting.pk}/output", size)
            journal.add("step_succeeded", waiting.path, kind="event", attempt=1, output=brief)
            after_success(run, graph_for(run), waiting, journal)
        save(run, journal)


def fire_timer(step_run_id: int) -> bool:
    """A due timer: a sleep ends (data passes through), or an event wait times out (EventTimeout)."""
    run_id = StepRun.objects.filter(pk=step_run_id).values_list("run_id", flat=True).first()
    if run_id is None:
        return False
    with transaction.atomic():
        run = lock(run_id)
        sr = StepRun.objects.filter(pk=step_run_id, status=StepStatus.WAITING, due_at__lte=timezone.now()).first()
        if sr is None or run.status not in RUN_ACTIVE:
            return False
        journal = Journal(run)
        if sr.kind == "sleep":  # its data passes through: its output is its input, or refers to the same place
            set_step(
                sr, (StepStatus.WAITING,), status=StepStatus.SUCCEEDED, output=sr.input, output_ref=sr.input_ref,
                finished_at=timezone.now(),
            )  # fmt: skip
            values.fill_step(sr)
            journal.add("step_succeeded", sr.path, kind="sleep", attempt=1)
            graph = graph_or_fail(run, journal, sr.path)
            if graph:
                after_success(run, graph, sr, journal)
        else:
            message = f"No event {sr.label!r} arrived before the timeout of {sr.path!r}"
            error = {"type": "EventTimeout", "message": message, "step": sr.path}
            on_failure(run, sr, error, False, "", (StepStatus.WAITING,), journal)
        save(run, journal)
        faults.point("fire_timer_before_commit")
    return True


def child_changed(child_id: int) -> None:
    """Mirror a child run's status on its parent's step (after the child's commit, in a transaction of its own)."""
    parent_step_id = Run.objects.filter(pk=child_id).values_list("parent_step_id", flat=True).first()
    parent_id = StepRun.objects.filter(pk=parent_step_id).values_list("run_id", flat=True).first()
    if parent_id is None:
        return
    with transaction.atomic():
        parent = lock(parent_id)
        child = Run.objects.get(pk=child_id)
        sr = StepRun.objects.get(pk=parent_step_id)
        journal = Journal(parent)
        if child.status == RunStatus.SUCCEEDED:
            # a large output equal to the step's input (the child passed its data along) refers to where that is
            same = sr.input_ref is not None and child.output == values.resolve(parent, sr.input_ref)
            fields = {"output": None if same else child.output, "output_ref": sr.input_ref if same else None}
            if set_step(sr, NESTED_OPEN, status=StepStatus.SUCCEEDED, finished_at=timezone.now(), **fields):
                sr.output = child.output
                brief = values.brief(child.output, f"steps/{sr.pk}/output")
                journal.add("step_succeeded", sr.path, attempt=sr.attempt, output=brief, child_run=child.pk)
                graph = graph_or_fail(parent, journal, sr.path) if parent.status in RUN_ACTIVE else None
                if graph:
                    after_success(parent, graph, sr, journal)
        elif child.status in (RunStatus.FAILED, RunStatus.CANCELED):
            cause = child.error or {"type": "Canceled", "message": f"child run {child.pk} was canceled", "step": ""}
            step = ".".join(p for p in (sr.path, cause.get("step") or "") if p)
            error = {"type": cause["type"], "message": cause["message"], "step": step}
            on_failure(parent, sr, error, False, child.traceback, NESTED_OPEN, journal)
        else:
            mirror = {RunStatus.SUSPENDED: StepStatus.SUSPENDED, RunStatus.WAITING: StepStatus.WAITING}
            status = mirror.get(child.status, StepStatus.RUNNING)
            if sr.status != status and set_step(sr, NESTED_OPEN, status=status):
                journal.add(f"step_{status}", sr.path, attempt=sr.attempt, child_run=child.pk)
        save(parent, journal)


def set_state(run_id: int, value: Any) -> Any:
    """Replace the run's state (``ctx.set_state``); validated by the workflow's state type. Returns the JSON."""
    graph = graph_for(_get(run_id))
    state = graph.state.dump(graph.state.validate(value, "state")) if graph.state else jsonable(value)
    with transaction.atomic():
        run = _lock_active(run_id, "change its state")
        run.state = state
        journal = Journal(run)
        journal.add("state_changed", state=state)
        save(run, journal)
    return state


def restart(run_id: int, from_step: str, input: Any = None, *, by: str | None = None) -> Run:
    """A new run of the same version that reuses the outputs of every block before ``from_step``'s block."""
    source = _get(run_id)
    graph = graph_for(source)
    try:
        index = graph.block_of(from_step).index
    except KeyError:
        raise InvalidInput(f"Workflow {source.workflow.name!r} has no step {from_step!r}") from None
    return _restart_at(source, graph, index, input, by)


def retry(run_id: int, *, by: str | None = None) -> Run:
    """Re-run a failed or canceled run from the block where it stopped, reusing what came before."""
    source = _get(run_id)
    if source.status not in (RunStatus.FAILED, RunStatus.CANCELED):
        raise InvalidTransition(f"Run {run_id} is {source.status}; only a failed or canceled run can be retried")
    return _restart_at(source, graph_for(source), source.cursor, None, by)


def _by(by: str | None) -> dict[str, str]:
    """The acting user's name for a journal event's data (the run page's history shows who acted)."""
    return {"by": by} if by else {}


def _restart_at(source: Run, graph, index: int, input: Any, by: str | None = None) -> Run:
    ref = None
    if input is not None:
        accept(input, "workflow input")
        data = storable(jsonable(input), "workflow input")
    elif index == 0:
        data = source.input
        ref = values.RUN_INPUT if values.size_of(data) > values.inline_limit() else None
    else:
        done = StepRun.objects.filter(run=source, block=index - 1, status=StepStatus.SUCCEEDED).exists()
        if not done or StepRun.objects.filter(run=source, block=index - 1).open().exists():
            raise InvalidTransition(f"Run {source.pk} did not finish the blocks before block {index}")
        data, ref = block_output_ref(source, graph, index - 1)
    with transaction.atomic():
        run = Run.objects.create(
            workflow=source.workflow, version=source.version, input=source.input, created_by_id=source.created_by_id,
            state=source.state, restarted_from=source, priority=source.priority,
        )  # fmt: skip
        run._locked_status = None
        kept = list(
            StepRun.objects.filter(
                run=source, block__lt=index, status__in=(StepStatus.SUCCEEDED, StepStatus.SKIPPED)
            ).order_by("pk")
        )
        copies = [
            StepRun(
                run=run, block=r.block, path=r.path, step_id=r.step_id, kind=r.kind, index=r.index, attempt=r.attempt,
                status=r.status, pool=r.pool, input=r.input, output=r.output, label=r.label, input_ref=r.input_ref,
                output_ref=r.output_ref,
                created_at=r.created_at, started_at=r.started_at, finished_at=r.finished_at,
            )
            for r in kept
        ]  # fmt: skip
        StepRun.objects.bulk_create(copies)
        ref = _refer_to_copies(kept, copies, ref)
        journal = Journal(run)
        trace = tracing.run_created(run, source.workflow.name)
        brief = values.brief(run.input, "input")
        journal.add(
            "run_created",
            input=brief,
            version=run.version,
            restarted_from=source.pk,
            from_block=index,
            **trace,
            **_by(by),
        )
        if copies:
            journal.add("steps_reused", count=len(copies), from_run=source.pk)
        enter(run, graph, index, data, journal, ref)
        save(run, journal)
    return run


def _refer_to_copies(kept: list[StepRun], copies: list[StepRun], ref: int | None) -> int | None:
    """A restart's copied rows refer to the new run's copies (not the source run's rows, which may be pruned);
    returns ``ref`` (a source row, or the run's input) as it is in the new run."""
    moved = {old.pk: new.pk for old, new in zip(kept, copies, strict=True)}
    changed = []
    for row in copies:
        for field in ("input_ref", "output_ref"):
            old = getattr(row, field)
            if old not in (None, values.RUN_INPUT):
                if old in moved:
                    setattr(row, field, moved[old])
                else:  # not copied (cannot happen: a reference is to an earlier succeeded row): store the value
                    setattr(row, field.removesuffix("_ref"), values.resolve(row.run_id, old))
                    setattr(row, field, None)
                changed.append(row)
    if changed:
        StepRun.objects.bulk_update(changed, ["input", "output", "input_ref", "output_ref"])
    return moved.get(ref, None) if ref not in (None, values.RUN_INPUT) else ref
