"""Draw a workflow graph (``Graph.to_json()``) as SVG, blocks laid out left to right.

Each block is a column: the steps of a ``parallel`` or ``branch`` block sit side by side (stacked in the column,
inside a dashed frame), loops and ``foreach`` carry a marker, nested workflows link to their page (on a run
page a click selects the node instead; its panel links the child run). Every node is a
``<g class="node" data-step="<id>" data-block="<index>">`` whose ``data-status`` the run page's script changes
as events arrive; the same markup with ``compact=True`` is the thumbnail on the home page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

STATUS_ICONS = {
    "pending": "○",
    "queued": "◔",
    "running": "▶",
    "waiting": "◷",
    "suspended": "‖",
    "succeeded": "✓",
    "failed": "✕",
    "canceled": "⊘",
    "skipped": "↷",
}

KIND_LABELS = {"parallel": "in parallel", "branch": "branch · if", "loop": "loop", "hook": "once the run ended"}


@dataclass(frozen=True)
class Metrics:
    node_w: int
    node_h: int
    col_gap: int
    row_gap: int
    pad: int
    frame: int  # padding of a parallel/branch frame
    label: int  # height of a frame's caption
    terminal: int  # radius of the start/end dots


FULL = Metrics(node_w=172, node_h=50, col_gap=54, row_gap=14, pad=14, frame=8, label=16, terminal=6)
COMPACT = Metrics(node_w=22, node_h=12, col_gap=12, row_gap=4, pad=3, frame=0, label=0, terminal=3)


@dataclass
class NodeBox:
    block: int
    kind: str  # step, workflow, map, sleep, event
    block_kind: str
    id: str
    x: int = 0
    y: int = 0
    title: str = ""
    sub: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.block}:{self.id}"


def node_id_of(path: str) -> str:
    """The graph node a step path belongs to: ``fetch[3]`` and ``refine#2`` are nodes ``fetch`` and ``refine``."""
    for sep in ("[", "#"):
        if sep in path:
            return path.split(sep, 1)[0]
    return path


def nodes_of(graph: dict[str, Any]) -> list[list[NodeBox]]:
    """The graph's columns: one list of nodes per block."""
    columns: list[list[NodeBox]] = []
    hooks: list[NodeBox] = []  # the completion hooks share one column, after the body
    for block in graph.get("blocks", []):
        kind, index = block.get("kind", "step"), block.get("index", len(columns))
        column = hooks if kind == "hook" else []
        if block.get("steps"):
            for i, s in enumerate(block["steps"]):
                node = NodeBox(index, s.get("kind", "step"), kind, str(s.get("id", "?")))
                node.info = s
                node.sub, node.title = _describe(block, s, i)
                column.append(node)
        else:
            node = NodeBox(index, kind, kind, str(block.get("id", kind)))
            node.info = block
            node.sub, node.title = _describe(block, None, 0)
            column.append(node)
        if column is not hooks:
            columns.append(column)
    return columns + ([hooks] if hooks else [])


def _describe(block: dict[str, Any], node: dict[str, Any] | None, i: int) -> tuple[str, str]:
    """(sub-label, tooltip) of a node."""
    kind = block.get("kind", "step")
    lines = []
    if node and node.get("description"):
        lines.append(node["description"])
    if kind == "hook":
        sub = f"on {block.get('on', '')}"
        ends = {"success": "succeeded", "failure": "failed"}.get(block.get("on", ""), "ended, however")
        lines.append(f"completion hook: runs after the run {ends}")
    elif node and node.get("kind") == "workflow":
        sub = "nested workflow ↗"
        lines.append(f"runs workflow {node.get('workflow')} as a child run")
    elif kind == "loop":
        sub = f"↻ loop {block.get('mode', 'while')}"
        cond = (block.get("conditions") or [""])[0]
        lines.append(f"repeats {block.get('mode', 'while')} {cond} (at most {block.get('max_iterations')} times)")
    elif kind == "foreach":
        sub = f"foreach · ×{block.get('concurrency', 1)}"
        lines.append(f"once per item of a list, {block.get('concurrency', 1)} at a time")
    elif kind == "branch":
        conds = block.get("conditions") or []
        cond = conds[i] if i < len(conds) else ""
        sub = "if " + cond.removeprefix("lambda c:").strip() if cond else "branch"
        lines.append(f"runs when {cond}")
    elif kind == "map":
        sub = "map"
        if block.get("source"):
            lines.append(block["source"])
    elif kind == "sleep":
        sub = "sleep until" if block.get("mode") == "until" else "sleep"
        if block.get("source"):
            lines.append(block["source"])
    elif kind == "event":
        sub = f"wait for “{block.get('event', '')}”"
        if block.get("timeout"):
            lines.append(f"times out after {block['timeout']} s")
    else:
        sub = "step"
        if node:
            extras = []
            if node.get("retries"):
                extras.append(f"{node['retries']} retries")
            if node.get("resume_schema"):
                extras.append("asks a human")
            if extras:
                sub = "step · " + ", ".join(extras)
            if node.get("pool") and node.get("pool") != "default":
                lines.append(f"pool {node['pool']}")
            if node.get("timeout"):
                lines.append(f"timeout {node['timeout']} s")
    return sub, "\n".join(lines)


def describe_text(graph: dict[str, Any]) -> str:
    """One sentence for screen readers: the blocks in order."""
    parts = []
    for column in nodes_of(graph):
        names = [n.id for n in column]
        kind = column[0].block_kind if column else "step"
        if kind in ("parallel", "branch"):
            parts.append(f"{kind} of {', '.join(names)}")
        elif kind in ("loop", "foreach"):
            parts.append(f"{kind} {names[0]}")
        elif kind == "hook":
            parts.append(f"completion hooks {', '.join(names)}")
        else:
            parts.append(names[0])
    return "Graph: " + (", then ".join(parts) if parts else "no steps")


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _layout(columns: list[list[NodeBox]], m: Metrics) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Place the nodes; return (width, height, frames as (x, y, h) for multi-node columns)."""
    heights = []
    for column in columns:
        h = len(column) * m.node_h + (len(column) - 1) * m.row_gap
        if len(column) > 1 and m.frame:
            h += 2 * m.frame + m.label
        heights.append(h)
    inner = max(heights + [m.node_h])
    height = inner + 2 * m.pad
    mid = height / 2
    x = m.pad + 2 * m.terminal + m.col_gap
    frames = []
    for column, h in zip(columns, heights, strict=True):
        framed = len(column) > 1 and m.frame
        top = round(mid - h / 2)
        if framed:
            frames.append((x, top, h))
            y = top + m.frame + m.label
            nx = x + m.frame
        else:
            y, nx = top, x
        for node in column:
            node.x, node.y = nx, y
            y += m.node_h + m.row_gap
        x += m.node_w + (2 * m.frame if framed else 0) + m.col_gap
    width = x + 2 * m.terminal + m.pad
    return width, height, frames


def _edge(x1: float, y1: float, x2: float, y2: float, cls: str = "edge") -> str:
    dx = (x2 - x1) / 2
    return (
        f'<path class="{cls}" d="M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"/>'
    )


def render(
    graph: dict[str, Any],
    *,
    compact: bool = False,
    states: dict[str, dict[str, Any]] | None = None,
    interactive: bool = False,
) -> SafeString:
    """The graph as inline SVG.

    ``states`` maps ``"<block>:<node id>"`` to ``{"status", "iteration", "done", "total"}`` (a run's initial
    state); ``interactive`` makes nodes focusable buttons (the run page's script selects a step on click).
    """
    m = COMPACT if compact else FULL
    states = states or {}
    columns = nodes_of(graph)
    width, height, frames = _layout(columns, m)
    mid = height / 2
    # a picture (role img) hides its children from assistive tech: with buttons or links inside, a named group
    role = "group" if interactive or any(n.kind == "workflow" for c in columns for n in c) else "img"
    out = [
        f'<svg class="graph{" graph-compact" if compact else ""}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="{role}" '
        f'aria-label="{escape(describe_text(graph))}">'
    ]
    # frames around parallel / branch columns
    for (fx, fy, fh), column in zip(frames, [c for c in columns if len(c) > 1 and m.frame], strict=True):
        kind = column[0].block_kind
        fw = m.node_w + 2 * m.frame
        out.append(
            f'<g class="frame frame-{escape(kind)}"><rect x="{fx}" y="{fy}" width="{fw}" height="{fh}" rx="10"/>'
            f'<text x="{fx + m.frame}" y="{fy + 12}">{escape(KIND_LABELS.get(kind, kind))}</text></g>'
        )
    # edges: each column's right side to a junction, the junction to each node of the next column
    start = (m.pad + m.terminal, mid)
    prev: list[tuple[float, float]] = [start]
    for column in columns:
        ins = [(n.x, n.y + m.node_h / 2) for n in column]
        dashed = column[0].block_kind in ("branch", "hook")
        if len(prev) == 1 and len(ins) == 1:
            out.append(_edge(prev[0][0], prev[0][1], ins[0][0], ins[0][1]))
        else:
            jx = (max(p[0] for p in prev) + min(i[0] for i in ins)) / 2
            for px, py in prev:
                out.append(_edge(px, py, jx, mid))
            for ix, iy in ins:
                out.append(_edge(jx, mid, ix, iy, "edge edge-branch" if dashed else "edge"))
        prev = [(n.x + m.node_w, n.y + m.node_h / 2) for n in column]
    end = (width - m.pad - m.terminal, mid)
    jx = (max(p[0] for p in prev) + end[0]) / 2
    for px, py in prev:
        out.append(_edge(px, py, jx if len(prev) > 1 else end[0], mid if len(prev) > 1 else py))
    if len(prev) > 1:
        out.append(_edge(jx, mid, end[0], end[1]))
    # start and end
    for (cx, cy), label in ((start, "start"), (end, "end")):
        out.append(f'<circle class="terminal terminal-{label}" cx="{cx}" cy="{cy}" r="{m.terminal}"/>')
        if not compact:
            out.append(f'<text class="terminal-label" x="{cx}" y="{cy + m.terminal + 13}">{label}</text>')
    # nodes
    for column in columns:
        for node in column:
            out.append(_node(node, m, compact, states.get(node.key, {}), interactive))
    out.append("</svg>")
    return mark_safe("".join(out))


def _node(node: NodeBox, m: Metrics, compact: bool, state: dict[str, Any], interactive: bool) -> str:
    status = state.get("status") or ""
    attrs = (
        f'class="node node-{escape(node.kind)} block-{escape(node.block_kind)}" data-step="{escape(node.id)}" '
        f'data-block="{node.block}" data-kind="{escape(node.block_kind if node.kind == "step" else node.kind)}" '
        f'data-status="{escape(status)}" transform="translate({node.x},{node.y})"'
    )
    label = f"{node.id}: {status or 'not started'}"
    if interactive:
        attrs += f' tabindex="0" role="button" aria-label="{escape(label)}"'
    title = escape(node.id + (f" — {node.title}" if node.title else ""))
    parts = [f"<g {attrs}><title>{title}</title>"]
    parts.append(f'<rect class="node-box" width="{m.node_w}" height="{m.node_h}" rx="{3 if compact else 8}"/>')
    if compact:
        parts.append("</g>")
        return "".join(parts)
    parts.append(f'<text class="node-label" x="12" y="21">{escape(_short(node.id, 17))}</text>')
    parts.append(f'<text class="node-sub" x="12" y="38">{escape(_short(node.sub, 25))}</text>')
    parts.append(
        f'<text class="node-icon" x="{m.node_w - 12}" y="21" text-anchor="end" aria-hidden="true">'
        f"{STATUS_ICONS.get(status, '')}</text>"
    )
    if node.block_kind == "loop":
        iteration = state.get("iteration")
        parts.append(
            f'<text class="node-iter" x="{m.node_w - 12}" y="38" text-anchor="end">'
            f"{f'#{iteration}' if iteration else ''}</text>"
        )
    if node.block_kind == "foreach" or node.kind == "step":  # foreach: items done; a step: ctx.progress()
        done, total = state.get("done", 0), state.get("total")
        frac = done / total if total else 0
        track = m.node_w - 24
        count = f"{done}/{total}" if total and node.block_kind == "foreach" else ""
        parts.append(
            f'<text class="node-count" x="{m.node_w - 12}" y="38" text-anchor="end">{count}</text>'
            f'<rect class="node-track" x="12" y="{m.node_h - 7}" width="{track}" height="3" rx="1.5"/>'
            f'<rect class="node-bar" x="12" y="{m.node_h - 7}" width="{track * frac:.1f}" height="3" rx="1.5" '
            f'data-track="{track}"/>'
        )
    parts.append("</g>")
    body = "".join(parts)
    if node.kind == "workflow" and not interactive:  # on a run page a click selects it (the panel links the child)
        href = reverse("workflows:workflow", args=[node.info.get("workflow", node.id)])
        body = f'<a class="node-link" href="{escape(href)}">{body}</a>'
    return body
