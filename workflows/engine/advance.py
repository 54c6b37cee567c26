"""Moving a run through its blocks: entering a block, spawning its steps, and what follows a success."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Q
from django.utils import timezone

from .. import tracing
from ..definition.context import Context
from ..definition.schema import jsonable
from ..exceptions import InvalidInput
from ..store import handoff_statements, statements, values
from ..store.conversations import SUBSTEP_KINDS
from ..store.journal import Journal
from ..store.models import RUN_ACTIVE, STEP_OPEN, InboundEvent, Run, RunEvent, StepRun, StepStatus
from ..store.workflow_rows import row_for
from . import handoff, policy
from .core import (
    check_output,
    error_of,
    fail_run,
    graph_for,
    pump_after_commit,
    save,
    set_step,
    succeed_run,
    traceback_of,
)

if TYPE_CHECKING:
    from ..definition.dsl import Workflow
    from ..definition.graph import Block, Graph, Node


def _context(run: Run, graph: Graph, index: int, data: Any, iteration: int = 1) -> Context:
    typed = graph.typed_input(data) if index == 0 else graph.blocks[index - 1].typed(data)
    state = graph.state.validate(run.state) if graph.state and run.state is not None else run.state
    return Context(data=typed, run_input=graph.typed_input(run.input), run_id=run.pk, iteration=iteration, state=state)


def _inline_row(run: Run, block: Block, data: Any, ref: int | None, **fields: Any) -> StepRun:
    now = timezone.now()
    defaults = {"status": StepStatus.SUCCEEDED, "started_at": now, "finished_at": now}
    return StepRun.objects.create(
        run=run, block=block.index, path=block.id, step_id=block.id, kind=block.kind, created_at=now,
        input=None if ref is not None else data, input_ref=ref, **{**defaults, **fields},
    )  # fmt: skip


def enter(run: Run, graph: Graph, index: int, data: Any, journal: Journal, ref: int | None = None) -> None:
    """Enter block ``index`` with ``data``: run inline blocks at once, create the step rows of the others.
    ``ref``: where ``data`` is stored if it is large (``store.values``), so that rows refer to it."""
    while index < graph.body_end:  # completion hooks come after the body, once the run ended (``hooks``)
        block = graph.blocks[index]
        run.cursor = index
        try:
            if block.kind in ("map", "branch", "sleep"):
                ctx = _context(run, graph, index, data)
            if block.kind == "map":
                out = jsonable(block.fn(ctx))
                size = check_output(out, block.id)
                row = _inline_row(run, block, data, ref, output=out)
                where = f"steps/{row.pk}/output"
                journal.add("step_succeeded", block.id, kind="map", attempt=1, output=values.brief(out, where, size))
                data, index, ref = out, index + 1, (row.pk if size > values.inline_limit() else None)
                continue
            if block.kind == "sleep":
                due = _due(block, block.fn(ctx))
                _inline_row(run, block, data, ref, status=StepStatus.WAITING, due_at=due, finished_at=None)
                journal.add("step_waiting", block.id, kind="sleep", until=due.isoformat())
                return
            if block.kind == "branch":
                taken = [bool(cond(ctx)) for cond in block.conditions]
        except Exception as exc:
            return fail_run(run, error_of(exc, block.id), traceback_of(exc), journal)
        if block.kind == "event":
            if _consume_stored_event(run, block, data, ref, journal):
                data, index, ref = run._consumed, index + 1, run._consumed_ref
                continue
            return
        if block.kind == "branch":
            for node, ok in zip(block.nodes, taken, strict=True):
                if not ok:
                    spawn(run, block, node, node.id, data, journal, status=StepStatus.SKIPPED, ref=ref)
            nodes = [n for n, ok in zip(block.nodes, taken, strict=True) if ok]
            if not nodes:
                data, index, ref = {}, index + 1, None
                continue
            for node in nodes:
                spawn(run, block, node, node.id, data, journal, ref=ref)
            return
        if block.kind == "loop":
            spawn(run, block, block.nodes[0], f"{block.id}#1", data, journal, index=1, ref=ref)
            return
        if block.kind == "foreach":
            if not isinstance(data, list):
                error = {"type": "InvalidInput", "step": block.id, "message": (
                    f"foreach {block.id!r} expects a list, got {type(data).__name__}")}  # fmt: skip
                return fail_run(run, error, "", journal)
            if not data:
                data, index, ref = [], index + 1, None
                continue
            concurrency = block.options["concurrency"]
            for i, item in enumerate(data):
                spawn(run, block, block.nodes[0], f"{block.id}[{i}]", item, journal, index=i, released=i < concurrency)
            journal.add("foreach_progress", block.id, completed=0, total=len(data))
            return
        for node in block.nodes:  # step, parallel
            spawn(run, block, node, node.id, data, journal, ref=ref)
        return
    succeed_run(run, graph, data, journal, ref)


def _due(block: Block, value: Any) -> dt.datetime:
    now = timezone.now()
    if block.options["mode"] == "until":
        if not isinstance(value, dt.datetime):
            raise InvalidInput(f"sleep_until {block.id!r} needs a datetime, got {value!r}")
        return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else value
    if not isinstance(seconds, int | float) or seconds < 0:
        raise InvalidInput(f"sleep {block.id!r} needs seconds >= 0, got {value!r}")
    return now + dt.timedelta(seconds=seconds)


def _consume_stored_event(run: Run, block: Block, data: Any, ref: int | None, journal: Journal) -> bool:
    """An event sent before the run got here is consumed now; otherwise wait for it (until its timeout)."""
    name = block.options["event"]
    stored = InboundEvent.objects.filter(run=run, name=name, consumed_by=None).order_by("pk").first()
    if stored:
        row = _inline_row(run, block, data, ref, output=stored.data, label=name)
        InboundEvent.objects.filter(pk=stored.pk).update(consumed_by=row)
        output = values.brief(stored.data, f"steps/{row.pk}/output")
        journal.add("step_succeeded", block.id, kind="event", attempt=1, output=output)
        run._consumed, run._consumed_ref = stored.data, values.output_root(row)
        return True
    timeout = block.options.get("timeout")
    due = timezone.now() + dt.timedelta(seconds=timeout) if timeout else None
    _inline_row(run, block, data, ref, status=StepStatus.WAITING, due_at=due, finished_at=None, label=name)
    journal.add("step_waiting", block.id, kind="event", event=name, timeout=timeout)
    return False


def spawn(
    run: Run, block: Block, node: Node, path: str, data: Any, journal: Journal, *, status: str = StepStatus.PENDING,
    index: int | None = None, released: bool = True, ref: int | None = None, hook: str = "",
) -> StepRun | None:  # fmt: skip
    """Create a node's row. A released step is ready for its pool (or takes a finishing step's slot at once); a
    nested workflow starts its child run. With ``ref`` the row refers to where ``data`` is stored (its ``input``
    column stays null; the object keeps the value, for a worker that runs it at once). Its concurrency key is
    computed here, once (an error in the key function fails the run)."""
    if run.status not in RUN_ACTIVE and not hook:  # a hook's run has ended: that is when hooks are made
        return None  # an earlier node's key function failed the run
    now = timezone.now()
    try:
        key, limit = _key(run, node, data, index) if status == StepStatus.PENDING else ("", None)
    except Exception as exc:
        error = {"type": "ConcurrencyKeyError", "message": f"concurrency_key of {path!r}: {exc!r}", "step": path}
        return fail_run(run, error, traceback_of(exc), journal)
    slot = (
        handoff.fields_for(journal, policy.pool(node), key, node.step.isolated)
        if released and status == StepStatus.PENDING and node.kind == "step"
        else None
    )
    fields = {"status": status, "due_at": now if released else None,
              "finished_at": now if status == StepStatus.SKIPPED else None, **(slot or {})}  # fmt: skip
    sr = StepRun(
        run=run, block=block.index, path=path, step_id=node.id, kind=node.kind, index=index, pool=policy.pool(node),
        input=None if ref is not None else data, input_ref=ref, created_at=now, hook=hook, priority=run.priority,
        concurrency_key=key, key_limit=limit, **fields,
    )  # fmt: skip
    statements.insert(sr)
    sr.input = data
    if slot:
        handoff.taken(journal, sr)
    elif status == StepStatus.PENDING and released:
        release(run, node, sr, journal)
    elif status == StepStatus.SKIPPED:
        journal.add("step_skipped", path)
    return sr


def _key(run: Run, node: Node, data: Any, index: int | None) -> tuple[str, int | None]:
    """(the step's concurrency key, its limit); ("", None) without one. The key function gets a ``Context``
    whose ``data`` is the step's typed input."""
    fn, limit = policy.key(node)
    if fn is None:
        return "", None
    graph = graph_for(run)
    typed = node.step.input.validate(data, "step input")
    state = graph.state.validate(run.state) if graph.state and run.state is not None else run.state
    ctx = Context(data=typed, run_input=graph.typed_input(run.input), run_id=run.pk, iteration=index or 1, state=state)
    value = fn(ctx)
    return ("", None) if value is None else (str(value)[:200], limit)


def release(run: Run, node: Node, sr: StepRun, journal: Journal) -> None:
    """Make a created row runnable: a step into its pool, a nested workflow as a child run."""
    if node.kind == "step":
        slot = handoff.fields_for(journal, sr.pool, sr.concurrency_key, node.step.isolated)
        if slot and set_step(sr, (StepStatus.PENDING,), **slot):
            return handoff.taken(journal, sr)
        if sr.due_at is None:
            sr.due_at = timezone.now()
            StepRun.objects.filter(pk=sr.pk).update(due_at=sr.due_at)
        journal.add("step_pending", sr.path, attempt=sr.attempt)
        return pump_after_commit({sr.pool})
    now = timezone.now()
    try:
        child_input = validated_input(node.workflow, sr.input)
    except InvalidInput as exc:
        StepRun.objects.filter(pk=sr.pk).update(status=StepStatus.FAILED, error=error_of(exc, sr.path), finished_at=now)
        journal.add("step_failed", sr.path, attempt=sr.attempt, error=error_of(exc, sr.path))
        if sr.hook:  # a nested workflow as a completion hook: its run has ended already
            return journal.add("hook_failed", sr.path, error=error_of(exc, sr.path))
        return fail_run(run, error_of(exc, sr.path), "", journal)
    StepRun.objects.filter(pk=sr.pk).update(status=StepStatus.RUNNING, started_at=now, due_at=sr.due_at or now)
    sr.status = StepStatus.RUNNING
    child = create_run(
        node.workflow, child_input, owner_id=run.created_by_id, parent_step=sr, state=run.state, priority=run.priority
    )
    journal.add("step_running", sr.path, attempt=sr.attempt, child_run=child.pk)


def block_output(run: Run, graph: Graph, index: int) -> Any:
    """A finished block's output, from its succeeded rows."""
    return block_output_ref(run, graph, index)[0]


def block_output_ref(run: Run, graph: Graph, index: int) -> tuple[Any, int | None]:
    """A finished block's output, and where it is stored if it is one row's large output (else None)."""
    block = graph.blocks[index]
    rows = list(
        StepRun.objects.filter(run=run, block=index, status=StepStatus.SUCCEEDED)
        .exclude(kind__in=SUBSTEP_KINDS)  # an agent step's model requests and tool calls
        .order_by("index", "pk")
        .values_list("pk", "path", "output", "output_ref")
    )
    refs = [ref if ref is not None else pk for pk, _, output, ref in rows]
    rows = [(path, values.resolve(run, ref) if ref is not None else output) for _, path, output, ref in rows]
    if block.kind in ("parallel", "branch"):
        outputs = dict(rows)
        return {n.id: outputs[n.id] for n in block.nodes if n.id in outputs}, None
    if block.kind == "foreach":
        return [output for _, output in rows], None
    large = values.size_of(rows[-1][1]) > values.inline_limit()
    return rows[-1][1], (refs[-1] if large else None)


def after_success(run: Run, graph: Graph, sr: StepRun, journal: Journal) -> None:
    """What follows a successful step: the next loop iteration, the next foreach item, or the next block."""
    block = graph.blocks[sr.block]
    if block.kind == "loop":
        return _loop_next(run, graph, block, sr, journal)
    still_open = None
    if block.kind == "foreach":
        still_open = _foreach_next(run, block, journal)
    if block.kind == "step":  # its one node succeeded: the block is done, with that node's output
        enter(run, graph, block.index + 1, sr.output, journal, values.output_root(sr))
    elif still_open is None:
        still_open = StepRun.objects.filter(run=run, block=block.index).open().exists()
    if block.kind != "step" and not still_open:
        data, ref = block_output_ref(run, graph, block.index)
        enter(run, graph, block.index + 1, data, journal, ref)


def _foreach_next(run: Run, block: Block, journal: Journal) -> bool | None:
    """An item of foreach ``block`` succeeded: journal the block's progress and release its next item (to the
    finishing step's slot if it may take it). Whether items are still open; None: not known, ask the rows.

    Between two items, no row of the block is counted and no statement compiled (``store.handoff_statements``):
    the next item is released by one statement, which also reads the block's last progress from the journal.
    Items with a concurrency key (their own key decides whether they may take the slot) or nested workflows, and
    a database without ``RETURNING``, take the general path (``_foreach_counted``)."""
    node = block.nodes[0]
    if node.kind != "step" or policy.key(node)[0] is not None or not statements.can_return():
        return _foreach_counted(run, block, journal)
    journal.add("foreach_progress", block.id)  # first, as ever; its counts are known once the next is released
    event = journal.events[-1]
    slot = handoff.fields_for(journal, policy.pool(node), "", node.step.isolated)
    released = handoff_statements.release_next(run.pk, block.index, block.id, slot or {"due_at": timezone.now()})
    sr, known = released or (None, None)
    known = _progress(block, journal, event) or known or handoff_statements.progress(run.pk, block.id)
    if known is None:  # not seen (entering the block journals its first progress): count the rows
        completed, total, _ = _counted(run, block)
    else:
        completed, total = known[0] + 1, known[1]
    event.data = {"completed": completed, "total": total}
    if sr is None:  # every item was released (or one of another pool waits: a settings deploy moved it)
        waiting = StepRun.objects.filter(run=run, block=block.index, kind="step", status=StepStatus.PENDING)
        waiting = waiting.filter(due_at=None).order_by("index").first()
        if waiting:
            release(run, node, waiting, journal)
        return True if waiting or completed < total else None  # None: the rows say whether the block is done
    sr.run = run
    if slot:
        handoff.taken(journal, sr)
    else:
        journal.add("step_pending", sr.path, attempt=sr.attempt)
        pump_after_commit({sr.pool})
    return True


def _progress(block: Block, journal: Journal, this: RunEvent) -> tuple[int, int] | None:
    """The block's (completed, total) journaled before ``this`` event in this transaction (not stored yet)."""
    earlier = [e for e in [*journal._written, *journal.events] if e is not this]
    for event in reversed(earlier):
        if event.kind == "foreach_progress" and event.step == block.id:
            return event.data["completed"], event.data["total"]
    return None


def _counted(run: Run, block: Block) -> tuple[int, int, int]:
    """(completed, total, open) of the block, counting its rows."""
    items = ~Q(kind__in=SUBSTEP_KINDS)
    counts = StepRun.objects.filter(run=run, block=block.index).aggregate(
        total=Count("pk", filter=items & Q(attempt=1)),
        completed=Count("pk", filter=items & Q(status=StepStatus.SUCCEEDED)),
        open=Count("pk", filter=Q(status__in=STEP_OPEN)),  # releasing the next item leaves it open
    )
    return counts["completed"], counts["total"], counts["open"]


def _foreach_counted(run: Run, block: Block, journal: Journal) -> bool:
    """``_foreach_next`` by counting the block's rows: one read of its counts, one of the next item."""
    completed, total, still_open = _counted(run, block)
    journal.add("foreach_progress", block.id, completed=completed, total=total)
    rows = StepRun.objects.filter(run=run, block=block.index).exclude(kind__in=SUBSTEP_KINDS)
    waiting = rows.filter(status=StepStatus.PENDING, due_at=None).order_by("index").first()
    if waiting:
        release(run, block.nodes[0], waiting, journal)
    return still_open > 0


def _loop_next(run: Run, graph: Graph, block: Block, sr: StepRun, journal: Journal) -> None:
    iteration = sr.index or 1
    try:
        ctx = _context(run, graph, block.index + 1, sr.output, iteration=iteration)
        holds = bool(block.conditions[0](ctx))
    except Exception as exc:
        return fail_run(run, error_of(exc, sr.path), traceback_of(exc), journal)
    if holds != (block.options["mode"] == "while"):
        return enter(run, graph, block.index + 1, sr.output, journal, values.output_root(sr))
    limit = block.options["max_iterations"]
    if iteration >= limit:
        message = f"Loop {block.id!r} reached max_iterations={limit} without its condition ending it"
        return fail_run(run, {"type": "LoopLimitExceeded", "message": message, "step": sr.path}, "", journal)
    next_path = f"{block.id}#{iteration + 1}"
    spawn(run, block, block.nodes[0], next_path, sr.output, journal, index=iteration + 1, ref=values.output_root(sr))


def validated_input(flow: Workflow, data: Any) -> Any:
    """The run input as stored JSON; InvalidInput before anything is written."""
    graph = flow.graph
    value = graph.typed_input(data)
    return jsonable(data) if graph.input.is_any else graph.input.dump(value)


def create_run(
    flow: Workflow,
    input_json: Any,
    *,
    owner_id: int | None = None,
    idempotency_key: str | None = None,
    idempotency_scope: str = "",
    parent_step=None,
    state: Any = None,
    workflow_id: int | None = None,
    debounce: dict[str, Any] | None = None,
    priority: int = 0,
) -> Run:
    """Create a run and enter its first block (call inside a transaction). A ``debounce``d run waits, pending
    and without steps, until its window passes (``engine.debounce.fire``)."""
    graph = flow.graph
    if graph.state is not None:
        try:
            state = graph.state.dump(graph.state.validate(state, "state")) if state is not None else None
        except InvalidInput:
            state = None  # a parent's state that does not fit this workflow's state type
        state = state if state is not None else graph.initial_state()
    run = Run(
        workflow_id=workflow_id or row_for(flow),
        version=graph.version,
        input=input_json,
        created_by_id=owner_id,
        idempotency_key=idempotency_key,
        idempotency_scope=idempotency_scope,
        parent_step=parent_step,
        state=state,
        priority=priority,
    )
    statements.insert(run)
    statements.attach_workflow(run, flow.name)  # its name for the journal's publication, without a query
    run._locked_status = None
    journal = Journal(run)
    trace = tracing.run_created(run, flow.name)  # the trace its steps join, in whatever process (``tracing``)
    size = values.size_of(input_json)
    created = {"input": values.brief(input_json, "input", size), "version": graph.version, **trace}
    if debounce:
        created["debounce"] = debounce
    journal.add("run_created", parent_step=parent_step and parent_step.pk, **created)
    if debounce is None:
        enter(run, graph, 0, input_json, journal, values.RUN_INPUT if size > values.inline_limit() else None)
    save(run, journal, derive=debounce is None)
    return run
