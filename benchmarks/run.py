"""Run every ``benchmarks/bench_*.py`` (each in its own interpreter) and write
``docs/benchmarks.md`` (tables, the machine, per-module times) and ``docs/img/benchmarks.svg``.

``make bench`` calls this. Benchmarks print their own figures; nothing here asserts a time.
Pass module names to run a subset: ``python -m benchmarks.run bench_engine``.

Each module gets its own time limit and all of them share :data:`TOTAL_BUDGET_S`, so that
``make bench`` (including the first ``uv sync``) ends within 15 minutes on a fresh 2-core
machine; a module still running at its limit is stopped and reported as timed out. A module may
write JSON figures to the path in ``CLOACA_BENCH_JSON``: ``{"plot": ...}`` is drawn as the bar
chart (see :mod:`benchmarks.bench_engine`) and ``"markdown": true`` puts its output in the doc as
Markdown rather than as a text block. ``bench_peers_*`` modules measure a peer for another module
in their own interpreter and are not run on their own.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SVG = ROOT / "docs" / "img" / "benchmarks.svg"
TOTAL_BUDGET_S = 660  # all modules; leaves ~4 minutes of the 15 for the first `uv sync`
MODULE_BUDGET_S = 300  # one module
# What each module measures (issue 10's items), in the order they run and appear in the doc.
ITEMS = {
    "bench_engine": "1. Per-task overhead: the floor, cloaca and the peers",
    "bench_runner": "1b. Durable runner next to the in-process runner",
    "bench_isolated": "2. Isolated notebook runs",
    "bench_workers": "3. Packaged tasks",
    "bench_build": "4. Build",
    "bench_server": "5. Server",
    "bench_notebook_server": "6. Notebook to server: `%cloaca_run --server`",
    "bench_dask": "Dask executor",
}


@dataclass
class Outcome:
    """What one module produced."""

    name: str
    status: str  # "ok", "failed (exit N)", "timed out", "skipped", "missing"
    seconds: float = 0.0
    output: str = ""
    data: dict[str, Any] | None = None


def machine() -> str:
    """One paragraph describing the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores{mem}, "
        f"Python {platform.python_version()}"
    )


def load() -> str:
    """The 1/5/15-minute load averages (other users' work shows up here)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def discover() -> list[str]:
    """Known modules in :data:`ITEMS` order, then any other ``bench_*`` module."""
    found = {p.stem for p in (ROOT / "benchmarks").glob("bench_*.py")}
    found = {n for n in found if not n.startswith("bench_peers")}
    return [n for n in ITEMS if n in found] + sorted(found - set(ITEMS))


def run_module(name: str, limit: float) -> Outcome:
    """Run ``python -m benchmarks.<name>`` with a time limit; capture its output and JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "figures.json"
        env = {**os.environ, "CLOACA_BENCH_JSON": str(data_path)}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", f"benchmarks.{name}"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=limit,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
            took = time.perf_counter() - t0
            return Outcome(name, "timed out", took, f"{out}\n(stopped after {limit:.0f} s)")
        took = time.perf_counter() - t0
        out = proc.stdout.strip()
        status = "ok"
        if proc.returncode != 0:
            status = f"failed (exit {proc.returncode})"
            out += f"\n\n(benchmark failed with exit code {proc.returncode})\n{proc.stderr[-2000:]}"
        data = json.loads(data_path.read_text()) if data_path.exists() else None
    return Outcome(name, status, took, out, data)


# ---------------------------------------------------------------------------- the plot
OURS, FLOORS = "#1f77b4", "#9e9e9e"
PEERS = "#ff7f0e"


def _colour(label: str) -> str:
    if label.startswith("cloaca"):
        return OURS
    if label.startswith(("plain", "graphlib")):
        return FLOORS
    return PEERS


def render_svg(plot: dict[str, Any]) -> str:
    """Horizontal bars of median µs/task per contender, one panel per shape, log scale."""
    import math

    shapes: dict[str, str] = plot["shapes"]
    figures: dict[str, dict[str, dict[str, float]]] = plot["figures"]
    label_w, bar_w, row_h, pad = 300, 460, 20, 30
    values = [f["median_us_per_task"] for s in figures.values() for f in s.values()]
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    span = math.log10(hi) - math.log10(lo)

    def x(v: float) -> float:
        return label_w + bar_w * (math.log10(max(v, lo)) - math.log10(lo)) / span

    width = label_w + bar_w + 120
    parts: list[str] = []
    y = pad
    for kind, title in shapes.items():
        rows = figures.get(kind, {})
        if not rows:
            continue
        parts.append(f'<text x="10" y="{y}" font-weight="bold">{_esc(title)}</text>')
        y += 10
        top = y
        for label, fig in rows.items():
            v = fig["median_us_per_task"]
            parts.append(
                f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{_esc(label)}</text>'
                f'<rect x="{label_w}" y="{y + 3}" width="{x(v) - label_w:.1f}" height="{row_h - 6}"'
                f' fill="{_colour(label)}"/>'
                f'<text x="{x(v) + 4:.1f}" y="{y + 14}">{_fmt(v)}</text>'
            )
            y += row_h
        decade = lo
        while decade <= hi:
            gx = x(decade)
            parts.append(
                f'<line x1="{gx:.1f}" y1="{top}" x2="{gx:.1f}" y2="{y}" stroke="#ddd"/>'
                f'<text x="{gx:.1f}" y="{y + 14}" text-anchor="middle" fill="#666">'
                f"{_fmt(decade)}</text>"
            )
            decade *= 10
        y += pad + 14
    height = y
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="{height - 8}" fill="#666">median µs per task, log scale; '
        f"blue: cloaca, grey: floors, orange: peers</text>" + "".join(parts) + "</svg>\n"
    )


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------------------- the doc
def _demote(markdown: str) -> str:
    """Push headings one level down (outside code blocks) to sit under the module's heading."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"#+ ", line) else line)
    return "\n".join(out)


def section(o: Outcome) -> str:
    """The doc section for one module."""
    title = ITEMS.get(o.name, o.name)
    head = f"## {title} (`{o.name}`, {o.seconds:.0f} s, {o.status})\n\n"
    if o.data and o.data.get("markdown") and o.status == "ok":
        return head + _demote(o.output) + "\n"
    return head + f"```text\n{o.output}\n```\n"


def summary(outcomes: list[Outcome], total: float) -> str:
    """Table of modules: item, status, seconds; and the issue's items still missing."""
    rows = ["| item | module | status | seconds |", "|---|---|---|---:|"]
    for o in outcomes:
        rows.append(f"| {ITEMS.get(o.name, '')} | `{o.name}` | {o.status} | {o.seconds:.0f} |")
    rows.append(f"| | **total** | | **{total:.0f}** |")
    return "\n".join(rows) + "\n"


def write_doc(outcomes: list[Outcome], total: float, load_before: str, svg: bool) -> None:
    """Write docs/benchmarks.md from the outcomes (and the notes at the end)."""
    header = (
        "# Benchmarks\n\n"
        "Generated by `make bench` (`python -m benchmarks.run`); do not edit by hand. Every "
        "ratio compares figures measured in the same run. The machines are small and shared "
        "(2 cores, other work running alongside), so single figures are noisy: benchmarks "
        "report medians or minima over several repetitions, and the ratios are what to read. "
        "Interpretation, where we are slower and why: the notes at the end.\n\n"
        f"- When: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n- Machine: {machine()}\n"
        f"- Load average (1/5/15 min) at start: {load_before}; at end: {load()}\n"
        f"- Time limits: {MODULE_BUDGET_S} s per module, {TOTAL_BUDGET_S} s for all\n\n"
    )
    parts = [header, summary(outcomes, total)]
    if svg:
        parts.append(
            "\n![Median µs per task for each contender, chain and fan-out]"
            f"({SVG.relative_to(DOC.parent).as_posix()})\n"
        )
    parts += ["\n" + section(o) for o in outcomes if o.status not in ("skipped", "missing")]
    absent = [o for o in outcomes if o.status in ("skipped", "missing")]
    if absent:
        parts.append("\n## Not in this run\n\n")
        parts += [f"- {ITEMS.get(o.name, o.name)} (`{o.name}`): {o.status}\n" for o in absent]
    notes_file = ROOT / "benchmarks" / "NOTES.md"
    if notes_file.exists():
        parts.append("\n" + notes_file.read_text())
    DOC.write_text("".join(parts))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write the doc and the plot; return the process exit code."""
    names = argv if argv else discover()
    load_before, start = load(), time.perf_counter()
    outcomes: list[Outcome] = []
    for name in names:
        left = TOTAL_BUDGET_S - (time.perf_counter() - start)
        if left < 10:
            outcomes.append(Outcome(name, f"skipped (total budget of {TOTAL_BUDGET_S} s spent)"))
            continue
        print(f"== {name}", flush=True)
        outcome = run_module(name, min(MODULE_BUDGET_S, left))
        print(
            f"{outcome.output}\n== {name}: {outcome.status} in {outcome.seconds:.0f} s", flush=True
        )
        outcomes.append(outcome)
    if not argv:  # a full run also lists the modules that are not in the tree yet
        outcomes += [
            Outcome(n, "missing (module not in the tree yet)") for n in ITEMS if n not in names
        ]
    plot = next((o.data["plot"] for o in outcomes if o.data and "plot" in o.data), None)
    if plot:
        SVG.parent.mkdir(parents=True, exist_ok=True)
        SVG.write_text(render_svg(plot))
    total = time.perf_counter() - start
    write_doc(outcomes, total, load_before, svg=plot is not None or SVG.exists())
    print(f"wrote {DOC.relative_to(ROOT)} in {total:.0f} s")
    return 1 if any(o.status.startswith(("failed", "timed")) for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
