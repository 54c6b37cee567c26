"""``workflows ops``: the operations view in a terminal (``GET api/operations/``, staff or
``workflows.view_all_runs``): the workers and recovery loops from their heartbeats, the RQ queues and the pools.
``--json`` gives the API's whole answer (schedules and versions in flight too)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table


def tables(answer: dict[str, Any]) -> Group:
    workers = Table(title="workers")
    for col in ("host", "pid", "name", "state", "last beat", "step run"):
        workers.add_column(col)
    for w in answer["workers"]:
        workers.add_row(
            w["host"], str(w["pid"]), w.get("name") or "", "alive" if w["alive"] else "gone", f"{w['age']:.0f}s ago",
            _step(w.get("step")) if w["alive"] else "",
        )  # fmt: skip
    loops = Table(title="recovery loops")
    for col in ("host", "pid", "state", "last tick", "last tick's actions", "failing"):
        loops.add_column(col)
    for r in answer["recovery"]:
        tick = r.get("last_tick_ago")
        actions = " ".join(f"{k} {n}" for k, n in (r.get("last_actions") or {}).items() if n)
        failing = r.get("failing_for")
        loops.add_row(
            r["host"], str(r["pid"]), "alive" if r["alive"] else "gone", "" if tick is None else f"{tick:.1f}s ago",
            actions, "" if failing is None else f"{failing:.0f}s ({r.get('error', '')})",
        )  # fmt: skip
    queues = Table(title="queues")
    for col in ("queue", "queued", "started", "failed"):
        queues.add_column(col)
    for q in answer["queues"]:
        queues.add_row(q["name"], str(q["queued"]), str(q["started"]), str(q["failed"]))
    pools = Table(title="pools")
    for col in ("pool", "running / limit", "waiting", "state"):
        pools.add_column(col)
    for p in answer["pools"]:
        pools.add_row(p["name"], f"{p['running']} / {p['limit']}", str(p["waiting"]), "paused" if p["paused"] else "")
    parts: list[Any] = [workers, loops, queues, pools]
    if answer.get("redis_error"):
        parts.insert(0, f"[red]{answer['redis_error']}[/red]")
    return Group(*parts)


def _step(step: dict[str, Any] | None) -> str:
    return f"{step['workflow']} #{step['run']} {step['path']}" if step else "idle"
