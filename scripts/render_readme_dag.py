"""Render the DAG picture used by the README and the docs home page (``docs/img/``).

Executes ``notebooks/02-data-pipeline.ipynb`` in a real kernel, with one extra cell after its first
run that saves the live DAG widget of that run as it ended (retried fetch, failed validation,
skipped downstream), so the picture is exactly what a user sees.
Drawn with graphviz's ``dot`` when installed, else with the kit's built-in layout.

Usage: ``python scripts/render_readme_dag.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02-data-pipeline.ipynb"
OUT = ROOT / "docs" / "img" / "dag-widget.svg"
SAVE = """
from cloaca_nb.hooks import current

_widget = [w for w in current().widgets if w.run_status == "failed"][-1]
_widget.save_svg({out!r})
"""


def main() -> int:
    """Execute the notebook and write the SVG of the first run's widget."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and "first = %cloaca_run" in c.source
    )
    save = SAVE.format(out=str(OUT))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(save))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
