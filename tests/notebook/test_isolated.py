"""``%cloaca_run --isolated``: generated notebook, real papermill, result brought back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

import cloaca_nb
from cloaca_nb.errors import IsolatedRunError
from cloaca_nb.isolated import make_notebook
from cloaca_nb.result import NotebookResult
from cloaca_nb.showerror import error_lines
from cloaca_nb.spare import shutdown_spares
from tests.notebook.conftest import RunCell

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

CELLS = [
    ("imports", "import math\nfrom cloaca import task\n%precision 3\nSCALE = 2\n"),
    ("explore", "rows = [5, 6]\nrows\nprint('just looking')\n"),
    ("helpers", "def norm(x):\n    return math.sqrt(x) * SCALE\n"),
    (
        "tasks",
        "@task(id='one')\ndef one(ctx):\n    ctx['v'] = norm(ctx.get('n', 16))\n    return ctx\n\n"
        "@task(id='two', dependencies=[one], retry_attempts=1)\ndef two(ctx):\n    if ctx.get('fail'):\n"
        "        raise RuntimeError('asked to fail')\n    ctx['w'] = ctx['v'] + 1\n    return ctx\n",
    ),
]


@pytest.fixture
def notebook(cell: RunCell) -> Iterator[None]:
    for cell_id, source in CELLS:
        cell(source, cell_id)
    yield
    shutdown_spares()


def test_generated_notebook_holds_only_what_tasks_need(notebook: None) -> None:
    nb = make_notebook(cloaca_nb.get_session())
    sources = [c.source for c in nb.cells]
    assert nb.cells[1].metadata["tags"] == ["parameters"]
    body = "\n".join(sources)
    assert "import math" in body and "SCALE = 2" in body and "def norm" in body
    assert "rows" not in body and "just looking" not in body and "precision" not in body
    task_cell = next(
        c for c in nb.cells if c.metadata.get("cloaca", {}).get("cell", "").endswith("(id tasks)")
    )
    assert task_cell.source.startswith("@task(id='one')")


def test_isolated_run_matches_in_kernel(notebook: None, ip: Any, tmp_path: Path) -> None:
    inkernel = ip.run_line_magic("cloaca_run", "-p n=9 --no-widget")
    isolated = ip.run_line_magic("cloaca_run", f"--isolated -p n=9 --workdir {tmp_path}")
    assert isinstance(isolated, NotebookResult)
    assert isolated.final_context.to_dict() == inkernel.final_context.to_dict() == {
        "n": 9, "v": 6.0, "w": 7.0,
    }  # fmt: skip
    assert isolated.statuses == inkernel.statuses
    assert isolated.cells == inkernel.cells
    executed = nbformat.read(isolated.notebook_path, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_isolated_failure_is_a_clear_error(notebook: None, ip: Any, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    with pytest.raises(IsolatedRunError) as info:
        ip.run_line_magic(
            "cloaca_run",
            f"--isolated -p fail=true --out res --workdir {tmp_path} --report {report}",
        )
    err = info.value
    assert (err.task_id, err.error_type, err.message) == ("two", "RuntimeError", "asked to fail")
    assert Path(err.notebook_path).exists() and str(err.notebook_path) in str(err)
    assert "line 9, in two" in err.traceback and "(id tasks)" in err.traceback
    assert ip.user_ns["res"].statuses == {"one": "Completed", "two": "Failed"}
    shown = error_lines(err)  # what the cell shows: the task's traceback, then one line
    assert len(shown) == 2 and "line 9, in two" in shown[0] and "cloaca/" not in shown[0]
    assert shown[1].endswith(str(err)) and "IsolatedRunError" in shown[1]
    html = report.read_text()
    assert "<html" in html and "asked to fail" in html


def test_failing_helper_cell_names_the_cell(cell: RunCell, ip: Any, tmp_path: Path) -> None:
    cell("from cloaca import task\nLIMIT = int('x' * 0 or '3')\n", "cfg")
    cell("import json\nBAD = json.loads('{}')['missing'] if False else None\n", "bad")
    cell("@task(id='t')\ndef t(ctx):\n    ctx['limit'] = LIMIT\n    return ctx\n", "t")
    result = ip.run_line_magic("cloaca_run", f"--isolated --workdir {tmp_path} --timeout 60")
    assert result.final_context["limit"] == 3


def test_spare_kernel_is_used_once(notebook: None, ip: Any, tmp_path: Path) -> None:
    first = ip.run_line_magic("cloaca_run", f"--isolated --spare -p n=4 --workdir {tmp_path}")
    second = ip.run_line_magic("cloaca_run", f"--isolated --spare -p n=1 --workdir {tmp_path}")
    assert first.final_context["w"] == 5.0 and second.final_context["w"] == 3.0
    assert first.notebook_path != second.notebook_path


def test_default_workdirs_share_one_capped_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from cloaca_nb.isolated import KEEP_RUNS, cache_dir, default_workdir

    monkeypatch.setenv("CLOACA_NB_ISOLATED_DIR", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache"
    old = []
    for i in range(KEEP_RUNS + 5):
        run = default_workdir()
        os.utime(run, (1_000_000 + i, 1_000_000 + i))  # oldest first
        old.append(run)
    newest = default_workdir()
    kept = sorted(p for p in (tmp_path / "cache").iterdir())
    assert len(kept) == KEEP_RUNS and newest in kept
    assert set(old[-(KEEP_RUNS - 1) :]) <= set(kept) and old[0] not in kept
    monkeypatch.delenv("CLOACA_NB_ISOLATED_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "cloaca-nb" / "isolated"
