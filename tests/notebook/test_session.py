"""The session's cell registry, driven through a real IPython shell."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import cloaca_nb
from cloaca_nb.errors import NoTasksError, TaskCellConflictError, TaskRedefinedWarning
from cloaca_nb.export import export_project
from cloaca_nb.isolated import make_notebook
from tests.notebook.conftest import RunCell

A = """
from cloaca import task

@task(id="load")
def load(context):
    context["rows"] = [1, 2, 3]
    return context
"""
B = """
@task(id="total", dependencies=["load"])
def total(context):
    context["total"] = sum(context["rows"])
    return context

@task(id="count", dependencies=["load"])
def count(context):
    context["count"] = len(context["rows"])
    return context
"""


def test_cells_define_tasks_in_order(cell: RunCell) -> None:
    cell(A, "a")
    cell(B, "b")
    session = cloaca_nb.get_session()
    assert session.task_ids() == ["load", "total", "count"]
    assert session.cell_of("total").cell_id == "b"
    assert session.cell_of("load").label.startswith("cell In[")


def test_rerun_replaces_by_id_and_drops_deleted_and_renamed(cell: RunCell) -> None:
    cell(A, "a")
    cell(B, "b")
    session = cloaca_nb.get_session()
    first = session.specs()["total"]
    cell(B.replace("sum(", "max(").replace('id="count"', 'id="n_rows"'), "b")
    assert session.task_ids() == ["load", "total", "n_rows"]
    assert session.specs()["total"] is not first
    cell("@task(id='total', dependencies=['load'])\ndef total(c):\n    return c\n", "b")
    assert session.task_ids() == ["load", "total"]  # n_rows deleted from the cell


def test_same_id_in_two_cells_names_both(cell: RunCell, ip: Any) -> None:
    cell(A, "a")
    result = cell("@task(id='load')\ndef other(c):\n    return c\n", "zzz", check=False)
    err = result.error_in_exec
    assert isinstance(err, TaskCellConflictError)
    assert err.task_id == "load" and "(id a)" in str(err.other_cell) and "(id zzz)" in str(err.cell)
    assert "cell In[" in str(err) and "--forget load" in str(err)
    assert pickle.loads(pickle.dumps(err)).other_cell == err.other_cell
    assert cloaca_nb.get_session().specs()["load"].fn.__name__ == "load"


def test_same_id_twice_in_one_cell_is_an_error(cell: RunCell) -> None:
    src = (
        "from cloaca import task\n"
        "@task(id='x')\ndef a(c): return c\n@task(id='x')\ndef b(c): return c\n"
    )
    assert isinstance(cell(src, "one", check=False).error_in_exec, TaskCellConflictError)


def test_without_cell_ids_a_redeclared_id_takes_over_the_cell_with_a_warning(
    cell: RunCell,
) -> None:
    cell(A, None)
    first = cell(B, None).execution_count
    with pytest.warns(TaskRedefinedWarning) as caught:
        again = cell(B.replace('id="count"', 'id="size"'), None).execution_count
    session = cloaca_nb.get_session()
    assert session.task_ids() == ["load", "total", "size"]
    warning = caught[0].message
    assert isinstance(warning, TaskRedefinedWarning)
    assert (warning.task_id, warning.cell, warning.other_cell) == (
        "total", f"cell In[{again}]", f"cell In[{first}]",
    )  # fmt: skip
    assert f"cell In[{again}] re-declares task 'total', which cell In[{first}] defined" in str(
        warning
    )
    assert len(caught) == 1  # one warning per cell, not one per task
    places = [c.place for c in session.cells_in_place_order()]
    assert session.cell_of("size").place == places[1]  # it took the replaced cell's place


def test_with_cell_ids_a_rerun_cell_keeps_its_place(cell: RunCell, tmp_path: Path) -> None:
    """The issue's case: edit and re-run the first cell; replay still finds `task` and `load`."""
    cell(A, "a")
    cell(B, "b")
    cell(A.replace("[1, 2, 3]", "[4, 5]"), "a")  # edited and re-run after B
    cell("x = 1", "c")
    session = cloaca_nb.get_session()
    assert [c.key for c in session.cells_in_place_order()] == ["a", "b", "c"]
    assert [c.sequence for c in session.cells_in_place_order()] == [3, 2, 4]
    project = export_project(session, tmp_path)  # used to raise UnresolvedNameError on `task`
    source = project.tasks_file.read_text()
    assert source.index("from cloaca import task") < source.index('@task(id="total"')
    assert "[4, 5]" in source and "[1, 2, 3]" not in source
    nb = make_notebook(session)
    labels = [c.metadata.get("cloaca", {}).get("cell", "") for c in nb.cells]
    assert [lab[-6:] for lab in labels if lab] == ["(id a)", "(id b)"]


def test_failed_cell_adds_but_does_not_remove(cell: RunCell) -> None:
    cell(A, "a")
    cell(B, "b")
    cell(
        "@task(id='total', dependencies=['load'])\ndef total(c):\n    return c\n1/0\n",
        "b",
        check=False,
    )
    assert cloaca_nb.get_session().task_ids() == ["load", "total", "count"]


def test_tasks_from_imported_modules_are_not_session_tasks(cell: RunCell) -> None:
    cell("import tests.engine.fixtures.diamond  # noqa: F401\nfrom cloaca import task\n", "i")
    assert cloaca_nb.get_session().task_ids() == []


def test_forget_and_reset(cell: RunCell, ip: Any) -> None:
    cell(A, "a")
    cell(B, "b")
    rows = ip.run_line_magic("cloaca_tasks", "--forget count")
    assert [r["task"] for r in rows] == ["load", "total"]
    assert rows[1]["dependencies"] == ["load"] and rows[1]["cell"].endswith("(id b)")
    text = repr(rows).splitlines()
    assert text[0].split() == ["task", "depends", "on", "defined", "in"]
    assert text[3].split()[:2] == ["total", "load"] and text[3].endswith("(id b)")
    assert "<td>total</td><td>load</td>" in rows._repr_html_() and "{" not in repr(rows)
    cell("@task(id='count')\ndef count(c):\n    return c\n", "new")  # no conflict any more
    empty = ip.run_line_magic("cloaca_tasks", "--reset")
    assert empty == [] and repr(empty) == "no tasks in the session yet"


def test_empty_session_cannot_run(ip: Any) -> None:
    with pytest.raises(NoTasksError, match="@task"):
        ip.run_line_magic("cloaca_run", "--no-widget")


def test_unload_removes_magics_and_listener(cell: RunCell, ip: Any) -> None:
    from cloaca.task import _listeners

    cell(A, "a")
    session = cloaca_nb.get_session()
    ip.run_line_magic("unload_ext", "cloaca_nb")
    try:
        assert "cloaca_run" not in ip.magics_manager.magics["line"]
        assert session.declare not in _listeners
        assert session.task_ids() == []
    finally:
        ip.run_line_magic("load_ext", "cloaca_nb")
