"""Draw a workflow graph (``Graph.to_json()``) as SVG, blocks laid out left to right (or top to bottom).

Each block is a column: the steps of a ``parallel`` or ``branch`` block sit side by side (stacked in the column,
inside a dashed frame), loops and ``foreach`` carry a marker, nested workflows link to their page (on a run
page a click selects the node instead; its panel links the child run). Every node is a
``<g class="node" data-step="<id>" data-block="<index>">`` whose ``data-status`` the run page's script changes
as events arrive; the same markup with ``compact=True`` is the thumbnail on the home page.
"""

from __future__ import annotations

import re
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
    label: str = ""  # shown instead of the id (display_label); "" = the id
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
            node.label = display_label(node.id, block)
            node.info = block
            node.sub, node.title = _describe(block, None, 0)
            column.append(node)
        if column is not hooks:
            columns.append(column)
    return columns + ([hooks] if hooks else [])


AUTO_ID = re.compile(r"^(sleep|map)(\d+)$")  # ids the DSL makes up (``.sleep(5)`` in block 2: "sleep2")


def display_label(node_id: str, block: dict[str, Any]) -> str:
    """What people see for a node: its id, except an id the DSL made up, which says what the block does."""
    m = AUTO_ID.match(node_id)
    if not m or block.get("kind") != m.group(1) or int(m.group(2)) != block.get("index", -2) + 1:
        return node_id
    if m.group(1) == "map":
        return "map data"
    source = str(block.get("source") or "")
    if block.get("mode") == "until":
        return "sleep until a time"
    return f"sleep {source} s" if re.fullmatch(r"\d+(\.\d+)?", source) else "sleep"


def labels_of(graph: dict[str, Any]) -> dict[str, str]:
    """``{node id: label}`` for the nodes whose label is not their id (the run page's script shows the labels)."""
    out = {}
    for block in graph.get("blocks", []):
        node_id = str(block.get("id") or "")
        if node_id and display_label(node_id, block) != node_id:
            out[node_id] = display_label(node_id, block)
    return out


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
        names = [n.label or n.id for n in column]
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


def _layout(
    columns: list[list[NodeBox]], m: Metrics, vertical: bool = False
) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """Place the nodes along the flow (left to right, or top to bottom when ``vertical``: a phone's narrow
    screen), a block's parallel nodes across it; return (width, height, frames as (x, y, w, h))."""
    along, across = (m.node_h, m.node_w) if vertical else (m.node_w, m.node_h)
    sizes = []  # (across, along) of each column
    for column in columns:
        framed = len(column) > 1 and m.frame
        width = len(column) * across + (len(column) - 1) * m.row_gap
        length = along
        if framed:  # the caption sits above the nodes: across them when horizontal, along the flow when vertical
            width += 2 * m.frame + (0 if vertical else m.label)
            length += 2 * m.frame + (m.label if vertical else 0)
        sizes.append((width, length))
    breadth = max([w for w, _ in sizes] + [across]) + 2 * m.pad
    mid = breadth / 2
    pos = m.pad + 2 * m.terminal + m.col_gap
    frames = []
    for column, (width, length) in zip(columns, sizes, strict=True):
        framed = len(column) > 1 and m.frame
        side = round(mid - width / 2)
        if framed:
            frames.append((side, pos, width, length) if vertical else (pos, side, length, width))
            side += m.frame + (0 if vertical else m.label)
            p = pos + m.frame + (m.label if vertical else 0)
        else:
            p = pos
        for node in column:
            node.x, node.y = (side, p) if vertical else (p, side)
            side += across + m.row_gap
        pos += length + m.col_gap
    total = pos + 2 * m.terminal + m.pad
    return (breadth, total, frames) if vertical else (total, breadth, frames)


def _edge(x1: float, y1: float, x2: float, y2: float, cls: str = "edge", vertical: bool = False) -> str:
    if vertical:
        dy = (y2 - y1) / 2
        curve = f"C{x1:.1f},{y1 + dy:.1f} {x2:.1f},{y2 - dy:.1f} {x2:.1f},{y2:.1f}"
    else:
        dx = (x2 - x1) / 2
        curve = f"C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return f'<path class="{cls}" d="M{x1:.1f},{y1:.1f} {curve}"/>'


def render(
    graph: dict[str, Any],
    *,
    compact: bool = False,
    states: dict[str, dict[str, Any]] | None = None,
    interactive: bool = False,
    vertical: bool = False,
) -> SafeString:
    """The graph as inline SVG.

    ``states`` maps ``"<block>:<node id>"`` to ``{"status", "iteration", "done", "total"}`` (a run's initial
    state); ``interactive`` makes nodes focusable buttons (the run page's script selects a step on click);
    ``vertical`` lays the flow out top to bottom (the pages show it instead below 700 px, see graph-phone.css).
    """
    m = COMPACT if compact else FULL
    v = vertical
    states = states or {}
    columns = nodes_of(graph)
    width, height, frames = _layout(columns, m, v)
    mid = (width if v else height) / 2

    def at(along: float, across: float) -> tuple[float, float]:  # flow coordinates to x, y
        return (across, along) if v else (along, across)

    def ins(n: NodeBox) -> tuple[float, float]:
        return (n.x + m.node_w / 2, n.y) if v else (n.x, n.y + m.node_h / 2)

    def outs(n: NodeBox) -> tuple[float, float]:
        return (n.x + m.node_w / 2, n.y + m.node_h) if v else (n.x + m.node_w, n.y + m.node_h / 2)

    def along(p: tuple[float, float]) -> float:
        return p[1] if v else p[0]

    # a picture (role img) hides its children from assistive tech: with buttons or links inside, a named group
    role = "group" if interactive or any(n.kind == "workflow" for c in columns for n in c) else "img"
    out = [
        f'<svg class="graph{" graph-compact" if compact else ""}{" graph-vertical" if v else ""}" '
        f'xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="{role}" '
        f'aria-label="{escape(describe_text(graph))}">'
    ]
    # frames around parallel / branch columns
    for (fx, fy, fw, fh), column in zip(frames, [c for c in columns if len(c) > 1 and m.frame], strict=True):
        kind = column[0].block_kind
        out.append(
            f'<g class="frame frame-{escape(kind)}"><rect x="{fx}" y="{fy}" width="{fw}" height="{fh}" rx="10"/>'
            f'<text x="{fx + m.frame}" y="{fy + 12}">{escape(KIND_LABELS.get(kind, kind))}</text></g>'
        )
    # edges: each column's far side to a junction, the junction to each node of the next column
    start = at(m.pad + m.terminal, mid)
    end = at((height if v else width) - m.pad - m.terminal, mid)
    prev: list[tuple[float, float]] = [start]
    for column in columns:
        targets = [ins(n) for n in column]
        dashed = column[0].block_kind in ("branch", "hook")
        if len(prev) == 1 and len(targets) == 1:
            out.append(_edge(*prev[0], *targets[0], vertical=v))
        else:
            junction = at((max(along(p) for p in prev) + min(along(t) for t in targets)) / 2, mid)
            for p in prev:
                out.append(_edge(*p, *junction, vertical=v))
            for t in targets:
                out.append(_edge(*junction, *t, "edge edge-branch" if dashed else "edge", vertical=v))
        prev = [outs(n) for n in column]
    if len(prev) > 1:
        junction = at((max(along(p) for p in prev) + along(end)) / 2, mid)
        for p in prev:
            out.append(_edge(*p, *junction, vertical=v))
        out.append(_edge(*junction, *end, vertical=v))
    else:
        out.append(_edge(*prev[0], *(end if v else (end[0], prev[0][1])), vertical=v))
    # start and end
    for (cx, cy), label in ((start, "start"), (end, "end")):
        out.append(f'<circle class="terminal terminal-{label}" cx="{cx}" cy="{cy}" r="{m.terminal}"/>')
        if not compact and v:  # beside the dot: below it is the edge
            tx, ty = cx + m.terminal + 4, cy + 4
            out.append(f'<text class="terminal-label terminal-label-side" x="{tx}" y="{ty}">{label}</text>')
        elif not compact:
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
    name = node.label or node.id
    label = f"{name}: {status or 'not started'}"
    if interactive:
        attrs += f' tabindex="0" role="button" aria-label="{escape(label)}" data-label="{escape(name)}"'
    title = escape(name + (f" — {node.title}" if node.title else ""))
    parts = [f"<g {attrs}><title>{title}</title>"]
    parts.append(f'<rect class="node-box" width="{m.node_w}" height="{m.node_h}" rx="{3 if compact else 8}"/>')
    if compact:
        parts.append("</g>")
        return "".join(parts)
    parts.append(f'<text class="node-label" x="12" y="21">{escape(_short(name, 17))}</text>')
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
