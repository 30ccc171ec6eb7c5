"""The example notebooks: committed without outputs, and 03 run through the papermill CLI.

Executing every notebook top to bottom is nbmake's job (``make test`` passes the notebooks to
pytest with ``--nbmake``); these tests check what nbmake does not: that git holds clean notebooks,
and that ``03-parameterized-runs.ipynb`` behaves as a papermill job with parameters.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIRS = ("notebooks", "examples", "binder")


def committed_notebooks() -> list[Path]:
    """Every ``.ipynb`` under the example directories (checkpoints excluded)."""
    found = []
    for name in NOTEBOOK_DIRS:
        found += [p for p in (ROOT / name).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found)


def test_the_four_tutorials_exist() -> None:
    names = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert {
        "01-quickstart.ipynb",
        "02-data-pipeline.ipynb",
        "03-parameterized-runs.ipynb",
        "04-build-and-deploy.ipynb",
    } <= names


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "use the python3 kernel"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        where = f"{path.name} cell {index}: strip outputs before committing"
        assert cell.outputs == [], where
        assert cell.execution_count is None, where


def test_parameters_cell_is_tagged() -> None:
    nb = nbformat.read(ROOT / "notebooks" / "03-parameterized-runs.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "n = " in tagged[0].source


@pytest.mark.kernel
@pytest.mark.slow
def test_papermill_cli_runs_03_with_parameters(tmp_path: Path) -> None:
    papermill = Path(sys.executable).parent / "papermill"
    source = ROOT / "notebooks" / "03-parameterized-runs.ipynb"
    out = tmp_path / "03-out.ipynb"
    cmd = [str(papermill), str(source), str(out), "--cwd", str(source.parent),
           "-p", "n", "7", "-p", "label", "seven", "-p", "run_self", "False",
           "--execution-timeout", "240", "--no-progress-bar"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    executed = nbformat.read(out, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 7" in injected[0].source
    assert executed.metadata.papermill.parameters == {"n": 7, "label": "seven", "run_self": False}
    result_cell = next(c for c in executed.cells if "result" in c.metadata.get("tags", []))
    printed = "".join(o.get("text", "") for o in result_cell.outputs if o.output_type == "stream")
    assert json.loads(printed.strip().splitlines()[-1]) == {
        "n": 7, "report": "seven: 140", "isolated": "Completed",  # 1 + 4 + ... + 49
    }  # fmt: skip
