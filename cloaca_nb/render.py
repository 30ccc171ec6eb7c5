"""Drawing the session DAG: DOT source, SVG through graphviz's ``dot``, and a pure-Python fallback.

Both SVG renderers give every task node a group ``<g id="task-<id>" class="node">`` whose first
shape carries the status colour and whose last ``<text>`` is the status line, so the widget's
front end recolours either drawing the same way. The fallback lays nodes out in columns by
dependency depth; it needs nothing but the standard library.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from cloaca_nb.session import SessionGraph

PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "skipped",
)
COLOURS = {
    PENDING: "#eceff1",
    RUNNING: "#ffd54f",
    SUCCEEDED: "#81c784",
    FAILED: "#e57373",
    SKIPPED: "#b0bec5",
    "missing": "#ffffff",
}
ERROR_RED = "#d32f2f"


@dataclass(frozen=True)
class NodeState:
    """What a node shows besides its id and cell: status, colour, duration (seconds) and the
    attempt it is on (``attempt > 1`` after retries)."""

    status: str = PENDING
    duration: float | None = None
    error: str | None = None
    attempt: int = 0

    @property
    def colour(self) -> str:
        """Fill colour of the status."""
        return COLOURS.get(self.status, COLOURS[PENDING])

    @property
    def line(self) -> str:
        """The status line drawn under the task id (``succeeded · 12 ms · attempt 3``)."""
        parts = [self.status]
        if self.duration is not None:
            parts.append(format_duration(self.duration))
        if self.attempt > 1:
            parts.append(f"attempt {self.attempt}")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for the widget's ``nodes`` trait."""
        return {
            "status": self.status,
            "colour": self.colour,
            "duration": self.duration,
            "error": self.error,
            "attempt": self.attempt,
            "line": self.line,
        }


def format_duration(seconds: float) -> str:
    """A duration in a sensible unit: ``0.0004`` -> ``400 µs``, ``0.012`` -> ``12 ms``,
    ``3.4`` -> ``3.40 s``, ``125`` -> ``2 min 5 s``, ``7300`` -> ``2 h 1 min``."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def dot_available() -> bool:
    """True when graphviz's ``dot`` binary is on ``PATH``."""
    return shutil.which("dot") is not None


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(
    graph: SessionGraph,
    states: Mapping[str, NodeState] | None = None,
    caption: str | None = None,
) -> str:
    """DOT source of ``graph``: task id, defining cell and status line per node; ``caption``
    (e.g. ``4/4 tasks · succeeded``) goes under the graph."""
    states = states or {}
    cycle_edges = set(zip(graph.cycle, graph.cycle[1:], strict=False))
    lines = [
        "digraph notebook {",
        '  rankdir=LR; bgcolor="transparent";',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
        '  edge [color="#607d8b"];',
    ]
    if graph.problems:
        label = "\n".join([*graph.problems, *([caption] if caption else [])])
        lines.append(f'  labelloc=t; fontcolor="{ERROR_RED}"; fontsize=11; label={_q(label)};')
    elif caption:
        lines.append(f'  labelloc=b; fontcolor="#37474f"; fontsize=11; label={_q(caption)};')
    for node in graph.nodes:
        if node.missing:
            attrs = (
                f"label={_q(node.id + chr(10) + 'not defined' + chr(10) + 'missing')}, "
                f'color="{ERROR_RED}", fontcolor="{ERROR_RED}", style="dashed,filled", '
                f'fillcolor="{COLOURS["missing"]}"'
            )
        else:
            state = states.get(node.id, NodeState())
            label = "\n".join([node.id, node.cell or "", state.line])
            tip = node.description or node.id
            attrs = f'label={_q(label)}, fillcolor="{state.colour}", tooltip={_q(tip)}'
        lines.append(f"  {_q(node.id)} [id={_q('task-' + node.id)}, {attrs}];")
    missing = {n.id for n in graph.nodes if n.missing}
    for dep, task_id in graph.edges:
        bad = dep in missing or (dep, task_id) in cycle_edges or (task_id, dep) in cycle_edges
        style = f' [color="{ERROR_RED}", penwidth=2]' if bad else ""
        lines.append(f"  {_q(dep)} -> {_q(task_id)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(
    graph: SessionGraph,
    states: Mapping[str, NodeState] | None = None,
    renderer: str = "auto",
    caption: str | None = None,
) -> str:
    """SVG of ``graph``: with ``dot`` when present (``renderer="auto"``/``"dot"``), else
    (or with ``renderer="python"``) the pure-Python layout; ``caption`` goes under it."""
    if renderer not in ("auto", "dot", "python"):
        raise ValueError(f"renderer must be auto, dot or python, got {renderer!r}")
    if renderer == "dot" or (renderer == "auto" and dot_available()):
        import graphviz

        data: bytes = graphviz.Source(to_dot(graph, states, caption)).pipe(format="svg")
        return data.decode("utf-8").replace("&#45;", "-")  # graphviz escapes every hyphen
    return python_svg(graph, states, caption)


# ---------------------------------------------------------------------------- fallback
_W, _H, _GAP_X, _GAP_Y, _PAD = 170, 58, 60, 22, 16


def _depths(graph: SessionGraph) -> dict[str, int]:
    """Longest-path depth of every node; edges closing a cycle are ignored."""
    deps: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for dep, task_id in graph.edges:
        deps[task_id].append(dep)
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(node: str) -> int:
        if node in depth:
            return depth[node]
        visiting.add(node)
        best = 0
        for dep in deps[node]:
            if dep not in visiting:
                best = max(best, visit(dep) + 1)
        visiting.discard(node)
        depth[node] = best
        return best

    for node in deps:
        visit(node)
    return depth


def python_svg(
    graph: SessionGraph,
    states: Mapping[str, NodeState] | None = None,
    caption: str | None = None,
) -> str:
    """Draw ``graph`` left to right in columns by dependency depth, without graphviz."""
    states = states or {}
    depth = _depths(graph)
    columns: dict[int, list[str]] = {}
    for node in graph.nodes:
        columns.setdefault(depth[node.id], []).append(node.id)
    pos = {
        nid: (_PAD + d * (_W + _GAP_X), _PAD + 20 * bool(graph.problems) + i * (_H + _GAP_Y))
        for d, ids in columns.items()
        for i, nid in enumerate(ids)
    }
    width = _PAD * 2 + (max(columns, default=0) + 1) * (_W + _GAP_X) - _GAP_X
    rows = max((len(v) for v in columns.values()), default=1)
    height = _PAD * 2 + 20 * bool(graph.problems) + rows * (_H + _GAP_Y) - _GAP_Y
    height += 16 * max(0, len(graph.problems) - 1)
    body_height = height
    height += 20 if caption else 0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica,Arial,sans-serif" font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#607d8b"/></marker></defs>',
    ]
    for i, problem in enumerate(graph.problems):
        out.append(
            f'<text x="{_PAD}" y="{_PAD + 4 + 16 * i}" fill="{ERROR_RED}">{escape(problem)}</text>'
        )
    missing = {n.id for n in graph.nodes if n.missing}
    cycle_edges = set(zip(graph.cycle, graph.cycle[1:], strict=False))
    for dep, task_id in graph.edges:
        (x1, y1), (x2, y2) = pos[dep], pos[task_id]
        bad = dep in missing or (dep, task_id) in cycle_edges or (task_id, dep) in cycle_edges
        colour = ERROR_RED if bad else "#607d8b"
        out.append(
            f'<path class="edge" d="M{x1 + _W},{y1 + _H / 2} C{x1 + _W + _GAP_X / 2},{y1 + _H / 2} '
            f'{x2 - _GAP_X / 2},{y2 + _H / 2} {x2},{y2 + _H / 2}" fill="none" stroke="{colour}" '
            'marker-end="url(#arrow)"/>'
        )
    for node in graph.nodes:
        x, y = pos[node.id]
        if node.missing:
            fill, stroke, dash, lines = (
                COLOURS["missing"],
                ERROR_RED,
                ' stroke-dasharray="4 3"',
                [node.id, "not defined", "missing"],
            )
        else:
            state = states.get(node.id, NodeState())
            fill, stroke, dash = state.colour, "#455a64", ""
            lines = [node.id, node.cell or "", state.line]
        tip = escape(node.description or node.id)
        out.append(f'<g id="task-{escape(node.id)}" class="node"><title>{tip}</title>')
        out.append(
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="8" fill="{fill}" '
            f'stroke="{stroke}"{dash}/>'
        )
        for j, text in enumerate(lines):
            weight = ' font-weight="bold"' if j == 0 else ""
            colour = ERROR_RED if node.missing else "#212121"
            out.append(
                f'<text x="{x + _W / 2}" y="{y + 17 + j * 15}" text-anchor="middle" '
                f'fill="{colour}"{weight}>{escape(text)}</text>'
            )
        out.append("</g>")
    if caption:
        out.append(
            f'<text x="{_PAD}" y="{body_height + 8}" fill="#37474f">{escape(caption)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
