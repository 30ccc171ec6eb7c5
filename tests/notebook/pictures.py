"""Reading the DAG pictures the kit draws: each task node's fill colour and status line.

Works on both renderers' SVG (graphviz ``dot`` and the Python fallback) and on SVG inlined in
nbconvert's HTML: every node is a ``<g id="task-<id>" class="node">`` group whose first shape
carries the status colour and whose last ``<text>`` is the status line.
"""

from __future__ import annotations

import base64
import html
import re

from cloaca_nb.render import COLOURS

_NODE = re.compile(r'<g id="task-(?P<id>[^"]+)" class="node">(?P<body>.*?)</g>', re.S)
_FILL = re.compile(r'<(?:path|polygon|rect|ellipse)\b[^>]*?\bfill="(?P<fill>[^"]+)"')
_TEXT = re.compile(r"<text\b[^>]*>(?P<text>.*?)</text>", re.S)
STATUS_OF_COLOUR = {v: k for k, v in COLOURS.items()}


def node_states(svg: str) -> dict[str, tuple[str, str]]:
    """Task id -> (status named by the fill colour, status line) for every node of ``svg``."""
    out = {}
    for match in _NODE.finditer(svg):
        fill = _FILL.search(match["body"])
        texts = _TEXT.findall(match["body"])
        colour = fill["fill"].lower() if fill else ""
        out[html.unescape(match["id"])] = (
            STATUS_OF_COLOUR.get(colour, colour),
            html.unescape(texts[-1]) if texts else "",
        )
    return out


def statuses(svg: str) -> dict[str, str]:
    """Task id -> status (from the fill colour) of every node of ``svg``."""
    return {k: v[0] for k, v in node_states(svg).items()}


_DRAWING = re.compile(r"<svg\b.*?</svg>|data:image/svg\+xml;base64,(?P<b64>[A-Za-z0-9+/=]+)", re.S)


def svgs(text: str) -> list[str]:
    """Every SVG drawing in ``text`` (e.g. an nbconvert HTML page), in page order: inline
    ``<svg>`` elements and base64 ``data:image/svg+xml`` images (nbconvert's default)."""
    return [
        base64.b64decode(m["b64"]).decode("utf-8") if m["b64"] else m[0]
        for m in _DRAWING.finditer(text)
    ]
