"""An agent step's model requests and tool calls: each one a StepRun row of its own under the agent step's path
(``answer/model#1``, ``answer/tool:lookup#1``), ``kind`` "model" or "tool", written only here.

A sub-step begins (``running``) only while its agent step's attempt is running, and ends ``succeeded`` (its
output recorded: the model's response, the tool's result) or ``failed``/``canceled``. A succeeded one is never
made again: when the agent step runs again (a lost worker, a resume, a retry) the agent replays it from its row.
Sub-steps hold no pool slot (their agent step holds one) and no lease (their agent step's lease covers them).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from .. import conf
from ..store.conversations import SUBSTEP_KINDS, AgentMessage
from ..store.journal import Journal
from ..store.models import StepRun, StepStatus
from . import pools
from .core import error_of, lock, pump_after_commit, save, set_step, traceback_of

__all__ = [
    "BUSY",
    "SUBSTEP_KINDS",
    "add_final",
    "begin",
    "close_open",
    "end",
    "recorded",
    "thread_history",
    "tokens_used",
]


def recorded(run_id: int, block: int, parent_path: str) -> dict[str, StepRun]:
    """The succeeded sub-steps of an agent step, by path: what a new execution replays."""
    rows = StepRun.objects.filter(
        run_id=run_id, block=block, path__startswith=f"{parent_path}/", kind__in=SUBSTEP_KINDS,
        status=StepStatus.SUCCEEDED,
    ).order_by("attempt")  # fmt: skip
    return {r.path: r for r in rows}


BUSY = "busy"  # begin(): the sub-step's pool has no free slot now; try again a little later


def begin(step_run_id: int, path: str, kind: str, input: Any, pool: str = "") -> StepRun | str | None:
    """A new attempt of sub-step ``path`` of the running agent step ``step_run_id``; None if that step is no
    longer running (canceled, its lease lost): the caller must stop. With ``pool`` (``agent_step(tool_pool=)``)
    the row holds a slot of that pool while it runs, taken under the pool row's lock like an admission, or
    ``BUSY`` when the pool has none free."""
    parent = StepRun.objects.filter(pk=step_run_id).only("run_id").first()
    if parent is None:
        return None
    if pool:
        pools.ensure(pool, conf.pool(pool))
    with transaction.atomic():
        if pool:  # lock order: pool row, then run rows (as pool admission); its runtime limit and pause apply
            row = pools.lock(pool)
            if row.paused or pools.busy(pool) >= row.effective_limit:
                return BUSY
        run = lock(parent.run_id)
        parent = StepRun.objects.filter(pk=step_run_id, status=StepStatus.RUNNING).first()
        if parent is None:
            return None
        now = timezone.now()
        attempt = StepRun.objects.filter(run=run, block=parent.block, path=path).count() + 1
        row = StepRun.objects.create(
            run=run, block=parent.block, path=path, step_id=parent.step_id, kind=kind, index=parent.index,
            attempt=attempt, status=StepStatus.RUNNING, pool=pool, input=input, worker=parent.worker,
            created_at=now, queued_at=now, started_at=now,
        )  # fmt: skip
        journal = Journal(run)
        journal.add("step_running", path, attempt=attempt, worker=parent.worker, kind=kind)
        save(run, journal, derive=False)
    return row


def end(
    row: StepRun, output: Any = None, *, error: BaseException | None = None, canceled: bool = False,
    messages: list[dict[str, Any]] = (), thread: str = "",
) -> bool:  # fmt: skip
    """running -> succeeded with ``output`` (and the conversation's new ``messages``: dicts of AgentMessage
    fields), or -> failed with ``error``, or -> canceled. False if the row was no longer running."""
    now = timezone.now()
    if canceled:
        fields: dict[str, Any] = {"status": StepStatus.CANCELED}
    elif error is not None:
        tb = traceback_of(error)
        fields = {"status": StepStatus.FAILED, "error": error_of(error, row.path), "traceback": tb}
    else:
        fields = {"status": StepStatus.SUCCEEDED, "output": output}
    with transaction.atomic():
        run = lock(row.run_id)
        if not set_step(row, (StepStatus.RUNNING,), finished_at=now, **fields):
            return False
        journal = Journal(run)
        data: dict[str, Any] = {"attempt": row.attempt, "kind": row.kind, "duration": row.duration}
        if error is not None and not canceled:
            journal.add("step_failed", row.path, error=row.error, **data)
        elif canceled:
            journal.add("step_canceled", row.path, attempt=row.attempt, kind=row.kind)
        else:
            journal.add("step_succeeded", row.path, output=output, **data)
            parent_path = row.path.rsplit("/", 1)[0]
            last = AgentMessage.objects.filter(run=run, block=row.block, step_path=parent_path).count()
            AgentMessage.objects.bulk_create(
                AgentMessage(
                    run=run,
                    block=row.block,
                    step_path=parent_path,
                    request_path=row.path,
                    thread=thread,
                    seq=last + i,
                    created_at=now,
                    **m,
                )  # fmt: skip
                for i, m in enumerate(messages, 1)
            )
        pump_after_commit({row.pool})  # a tool_pool slot freed: admit the pool's waiting steps
        save(run, journal, derive=False)
    return True


def add_final(run_id: int, block: int, parent_path: str, thread: str, messages: list[dict[str, Any]]) -> bool:
    """The messages an agent's run ends with after its last model response (an output tool's return), stored
    once (as request path ``<step>/final``) so that a thread's history is a whole conversation."""
    with transaction.atomic():
        run = lock(run_id)
        path = f"{parent_path}/final"
        if AgentMessage.objects.filter(run=run, block=block, request_path=path).exists():
            return False
        last = AgentMessage.objects.filter(run=run, block=block, step_path=parent_path).count()
        AgentMessage.objects.bulk_create(
            AgentMessage(
                run=run,
                block=block,
                step_path=parent_path,
                request_path=path,
                thread=thread,
                seq=last + i,
                kind="request",
                message=m,
            )  # fmt: skip
            for i, m in enumerate(messages, 1)
        )
    return True


def close_open(run_id: int, block: int, parent_path: str, *, lost: bool = False) -> int:
    """End the sub-steps of an agent step that are still running: canceled (its body stopped them), or failed
    as WorkerLost (``lost``: its worker died). Called inside or outside a transition."""
    from ..exceptions import WorkerLost

    rows = StepRun.objects.filter(
        run_id=run_id, block=block, path__startswith=f"{parent_path}/", kind__in=SUBSTEP_KINDS,
        status=StepStatus.RUNNING,
    )  # fmt: skip
    pools = set(rows.exclude(pool="").values_list("pool", flat=True))
    if lost:
        error = error_of(WorkerLost(f"the worker running {parent_path!r} was lost"), parent_path)
        count = rows.update(status=StepStatus.FAILED, error=error, finished_at=timezone.now())
    else:
        count = rows.update(status=StepStatus.CANCELED, finished_at=timezone.now())
    pump_after_commit(pools)
    return count


def tokens_used(run_id: int) -> int:
    """Input plus output tokens of every model response of the run so far."""
    agg = AgentMessage.objects.filter(run_id=run_id, kind="response").aggregate(
        i=Sum("input_tokens"), o=Sum("output_tokens")
    )
    return (agg["i"] or 0) + (agg["o"] or 0)


def thread_history(thread: str, upto: int | None, exclude_run: int, exclude_path: str) -> tuple[list[dict], int]:
    """The messages of a thread (earlier runs' and earlier agent steps' conversations) with ids up to ``upto``
    (None: all there are now), oldest first, without the asking step's own; and the newest id included."""
    rows = AgentMessage.objects.filter(thread=thread).exclude(run_id=exclude_run, step_path=exclude_path)
    if upto is not None:
        rows = rows.filter(id__lte=upto)
    found = list(rows.order_by("id").values_list("id", "message"))
    return [m for _, m in found], (found[-1][0] if found else (upto or 0))
