"""One run in detail: the graph it runs, its step attempts, the state of each graph node, its related runs, and
what can be done to it (the suspended steps to resume, the events to send, the steps to restart from)."""

from __future__ import annotations

from typing import Any

from ...store.models import Run, StepRun, StepStatus, WorkflowVersion
from ..drawing import display_label, node_id_of

STEP_FIELDS = (
    "id", "block", "path", "step_id", "kind", "index", "attempt", "status", "pool", "label", "worker",
    "created_at", "queued_at", "started_at", "finished_at", "due_at", "error",
)  # fmt: skip


def graph_of_run(run: Run) -> dict[str, Any]:
    """The graph of the version the run started with (kept in WorkflowVersion), else the workflow's current one."""
    graph = (
        WorkflowVersion.objects.filter(workflow_id=run.workflow_id, version=run.version)
        .values_list("graph", flat=True)
        .first()
    )
    return graph or run.workflow.graph or {}


def step_rows(run: Run) -> list[dict[str, Any]]:
    """Every step attempt of the run (without the potentially large input/output/traceback), oldest first."""
    return list(StepRun.objects.filter(run=run).order_by("pk").values(*STEP_FIELDS))


FOREACH_PRECEDENCE = ("failed", "running", "suspended", "waiting", "queued", "pending", "canceled")


def node_states(graph: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per graph node (``"<block>:<node id>"``): its status, a loop's iteration, a foreach's done/total.

    The run page's script computes the same from the journal as events arrive (static/workflows/run.js).
    """
    kinds = {b.get("index"): b.get("kind") for b in graph.get("blocks", [])}
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for s in steps:
        key = (s["block"], s["path"])
        if key not in latest or s["attempt"] >= latest[key]["attempt"]:
            latest[key] = s
    grouped: dict[str, list[dict[str, Any]]] = {}
    for (block, path), s in latest.items():
        grouped.setdefault(f"{block}:{node_id_of(path)}", []).append(s)
    states = {}
    for key, rows in grouped.items():
        kind = kinds.get(rows[0]["block"])
        if kind == "foreach":
            statuses = {r["status"] for r in rows}
            done = sum(r["status"] == StepStatus.SUCCEEDED for r in rows)
            if statuses <= {StepStatus.SUCCEEDED, StepStatus.SKIPPED}:
                status = StepStatus.SUCCEEDED
            else:
                status = next(s for s in FOREACH_PRECEDENCE if s in statuses)
            states[key] = {"status": status, "done": done, "total": len(rows)}
        elif kind == "loop":
            last = max(rows, key=lambda r: (r["index"] or 0, r["attempt"]))
            states[key] = {"status": last["status"], "iteration": last["index"] or 1}
        else:
            states[key] = {"status": rows[-1]["status"], "attempt": rows[-1]["attempt"]}
    return states


def related_runs(run: Run, user: Any) -> dict[str, Any]:
    """Parent, children (nested workflows), the run this one restarted and its restarts, as the user may see them."""
    visible = Run.objects.visible_to(user)
    parent = None
    if run.parent_step_id:
        row = (
            StepRun.objects.filter(pk=run.parent_step_id)
            .values("run_id", "path", "run__workflow__name", "run__status")
            .first()
        )
        if row and visible.filter(pk=row["run_id"]).exists():
            parent = {
                "id": row["run_id"],
                "step": row["path"],
                "workflow": row["run__workflow__name"],
                "status": row["run__status"],
            }
    children = [
        {"id": c["id"], "workflow": c["workflow__name"], "status": c["status"], "step": c["parent_step__path"]}
        for c in visible.filter(parent_step__run=run)
        .order_by("pk")
        .values("id", "workflow__name", "status", "parent_step__path")
    ]
    restarted_from = None
    if run.restarted_from_id:
        restarted_from = visible.filter(pk=run.restarted_from_id).values("id", "status").first()
    restarts = list(visible.filter(restarted_from=run).order_by("pk").values("id", "status"))
    return {"parent": parent, "children": children, "restarted_from": restarted_from, "restarts": restarts}


def resume_targets(run: Run, prefix: str = "", depth: int = 0) -> list[dict[str, Any]]:
    """The suspended steps a resume can reach: ``{"path", "step", "schema"}``, through nested workflows
    (``path`` ``"child.step"``; ``step`` is the suspended leaf StepRun, ``schema`` its resume JSON Schema)."""
    out = []
    graph = None
    for sr in run.steps.filter(status=StepStatus.SUSPENDED).order_by("pk"):
        if sr.kind == "workflow":
            child = Run.objects.filter(parent_step=sr).order_by("-pk").first()
            if child is not None and depth < 10:
                out += resume_targets(child, f"{prefix}{sr.path}.", depth + 1)
            continue
        graph = graph if graph is not None else graph_of_run(run)
        out.append({"path": prefix + sr.path, "step": sr, "schema": resume_schema(graph, sr)})
    return out


def pending_events(run: Run, graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's ``wait_for_event`` blocks not consumed yet (events may be sent before the run gets there)."""
    consumed = set(run.steps.filter(kind="event", status=StepStatus.SUCCEEDED).values_list("path", flat=True))
    waiting = set(run.steps.filter(kind="event", status=StepStatus.WAITING).values_list("path", flat=True))
    out = []
    for block in graph.get("blocks", []):
        if block.get("kind") == "event" and block.get("id") not in consumed:
            out.append(
                {
                    "id": block.get("id"),
                    "event": block.get("event"),
                    "schema": block.get("output_schema") or {},
                    "waiting": block.get("id") in waiting,
                    "timeout": block.get("timeout"),
                }
            )
    return out


def resume_schema(graph: dict[str, Any], step: StepRun) -> dict[str, Any] | None:
    """The JSON Schema a suspended step's resume data must match (None: any JSON)."""
    for block in graph.get("blocks", []):
        if block.get("index") == step.block:
            for node in block.get("steps", []):
                if node.get("id") == step.step_id:
                    return node.get("resume_schema")
    return None


def restart_choices(graph: dict[str, Any]) -> list[tuple[str, str]]:
    """(step id, label) of every block a run can be restarted from, in order."""
    out = []
    seen = set()
    for block in graph.get("blocks", []):
        if block.get("kind") == "hook":  # completion hooks run after the body: nothing to restart from
            continue
        ids = [n.get("id") for n in block.get("steps", [])] or [block.get("id")]
        for node_id in ids:
            if node_id and node_id not in seen:
                seen.add(node_id)
                label = display_label(node_id, block)  # a made-up id ("sleep2") as people read it
                out.append((node_id, f"{block.get('index', 0) + 1}. {label} ({block.get('kind', 'step')})"))
    return out
