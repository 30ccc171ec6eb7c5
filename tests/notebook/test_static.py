"""Notebooks run without a live front end (nbclient, papermill: no cell ids) and read without a
kernel (saved ``.ipynb``, ``jupyter nbconvert --to html``): each run keeps its own final picture,
and a cell re-declaring another cell's task says so where it happens."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import papermill
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from tests.notebook.pictures import statuses, svgs

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

WIDGET = "application/vnd.jupyter.widget-view+json"
TASKS = """\
from cloaca import task

FAIL = True

@task(id="load")
def load(context):
    context["rows"] = [1, 2, 3]
    return context

@task(id="check", dependencies=["load"])
def check(context):
    if FAIL:
        raise ValueError("bad rows")
    return context

@task(id="report", dependencies=["check"])
def report(context):
    context["report"] = len(context["rows"])
    return context
"""


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    return nb


def test_saved_notebook_and_html_show_each_runs_final_picture(tmp_path: Path) -> None:
    nb = _notebook("%load_ext cloaca_nb", TASKS, "%cloaca_run", "FAIL = False", "%cloaca_run")
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    path = tmp_path / "runs.ipynb"
    nbformat.write(nb, path)
    saved = nbformat.read(path, as_version=4)
    pictures = []
    for index in (2, 4):  # the two %cloaca_run cells
        displays = [o for o in saved.cells[index].outputs if o.output_type == "display_data"]
        assert len(displays) == 1 and WIDGET not in displays[0].data  # no live widget is saved
        pictures.append(displays[0].data["image/svg+xml"])
    first = {"load": "succeeded", "check": "failed", "report": "skipped"}
    second = {"load": "succeeded", "check": "succeeded", "report": "succeeded"}
    assert [statuses(p) for p in pictures] == [first, second]
    assert "3/3 tasks · failed" in pictures[0] and "3/3 tasks · succeeded" in pictures[1]

    html, _ = HTMLExporter().from_filename(str(path))
    drawn = [s for s in svgs(html) if 'id="task-' in s]
    assert [statuses(s) for s in drawn] == [first, second]
    first_at, second_at = (html.index(base64.b64encode(p.encode()).decode()) for p in pictures)
    assert (
        first_at < html.index("ValueError: bad rows") < second_at
    )  # run 1, its failure, then run 2


def test_papermill_without_cell_ids_warns_where_a_task_is_redeclared(tmp_path: Path) -> None:
    src = tmp_path / "twice.ipynb"
    nbformat.write(
        _notebook(
            "%load_ext cloaca_nb",
            TASKS,
            '@task(id="load")\ndef load_again(context):\n    return context',
            "print(cloaca_nb_cells := len(__import__('cloaca_nb').get_session().cells))",
        ),
        src,
    )
    out = tmp_path / "twice.out.ipynb"
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))  # fmt: skip
    executed = nbformat.read(out, as_version=4)
    streams = [o for o in executed.cells[2].outputs if o.output_type == "stream"]
    text = "".join(o.text for o in streams if o.name == "stderr")
    assert "TaskRedefinedWarning" in text
    assert "cell In[3] re-declares task 'load', which cell In[2] defined" in text
    # nothing else warned: the cell with the tasks and the later cells are quiet
    assert not any(
        o.output_type == "stream" and o.name == "stderr" for o in executed.cells[1].outputs
    )
