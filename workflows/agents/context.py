"""What an agent step reads before its agent runs (synchronous database work, called through ``durable.db``)."""

from __future__ import annotations

from typing import Any

from ..definition.context import Context, StepContext
from ..engine import graph_for, substeps
from ..store.models import Run, StepRun


def context_for(ctx: StepContext, data: Any, typed: bool) -> Context:
    """The ``c`` given to ``prompt`` and ``thread``: ``c.data`` typed like a condition's (the previous block's
    output type, the workflow's input type for the first block); the step's data as it came when ``typed`` is
    false (``agent_step(input=...)`` typed it already) or the block has no single type (a foreach item)."""
    iteration = 1
    if typed:
        run = Run.objects.select_related("workflow").get(pk=ctx.run_id)
        graph = graph_for(run)
        block = graph.blocks[ctx.block]
        row = StepRun.objects.filter(pk=ctx.step_run_id).values_list("index", flat=True).first()
        iteration = row or 1
        try:
            if block.kind == "loop" and iteration > 1:
                data = block.nodes[0].output.validate(data, "input")
            elif block.kind != "foreach":
                data = graph.typed_input(data) if ctx.block == 0 else graph.blocks[ctx.block - 1].typed(data)
        except Exception:  # leave the JSON as it is: a prompt function may read it as a dict
            pass
    return Context(data=data, run_input=ctx.run_input, run_id=ctx.run_id, iteration=iteration, state=ctx.state)


def recorded(ctx: StepContext) -> dict[str, StepRun]:
    return substeps.recorded(ctx.run_id, ctx.block, ctx.path)


def history_upto(rows: dict[str, StepRun], path: str) -> int | None:
    """The newest thread message the first execution of this step saw (None: it has not asked the model yet)."""
    first = rows.get(f"{path}/model#1")
    return (first.input or {}).get("history_upto") if first is not None else None


def thread_history(thread: str, upto: int | None, ctx: StepContext) -> tuple[list[dict], int]:
    return substeps.thread_history(thread, upto, ctx.run_id, ctx.path)


def close_open(ctx: StepContext) -> int:
    return substeps.close_open(ctx.run_id, ctx.block, ctx.path)


def add_final(ctx: StepContext, thread: str, messages: list[dict]) -> bool:
    return substeps.add_final(ctx.run_id, ctx.block, ctx.path, thread, messages)
