"""End to end in a real ipykernel: task cells, redefinition, runs, live widget messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notebook.kernel import kernel
from tests.notebook.pictures import statuses

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(120)]

CELL_LOAD = """
from cloaca import task

@task(id="load")
def load(context):
    context["rows"] = [3, 1, 2]
    return context
"""
CELL_STATS = """
@task(id="total", dependencies=["load"])
def total(context):
    context["total"] = sum(context["rows"])
    return context

@task(id="biggest", dependencies=["load"])
def biggest(context):
    context["biggest"] = max(context["rows"])
    return context
"""


def test_cells_redefine_delete_run(tmp_path: Path) -> None:
    with kernel(tmp_path) as k:
        k.check("%load_ext cloaca_nb", "c-ext")
        k.check(CELL_LOAD, "c-load")
        k.check(CELL_STATS, "c-stats")
        # redefine `total` (now doubles) and delete `biggest` from the same cell
        k.check(CELL_STATS.split('@task(id="biggest"')[0].replace("sum(", "2 * sum("), "c-stats")
        k.check("@task(id='report', dependencies=['total'])\n"
                "def report(context):\n    context['report'] = f\"total={context['total']}\"\n"
                "    return context\n", "c-report")  # fmt: skip
        clash = k.run("@task(id='load')\ndef again(c):\n    return c\n", "c-other")
        assert clash.status == "error" and clash.error["ename"] == "TaskCellConflictError"
        assert "(id c-load)" in clash.error["evalue"]
        dag = k.check("w = %cloaca_dag\nw")
        assert any("application/vnd.jupyter.widget-view+json" in d for d in dag.data)
        run = k.check("%cloaca_run -p scale=1 --out res")
        state = k.check(
            "import json\nprint(json.dumps({'ctx': res.final_context.to_dict(),"
            " 'status': res.status, 'nodes': {k: v['status'] for k, v in w.nodes.items()},"
            " 'done': [w.done, w.total]}))"
        ).json()
    assert state["status"] == "Completed"
    assert state["ctx"] == {"scale": 1, "rows": [3, 1, 2], "total": 12, "report": "total=12"}
    assert state["nodes"] == {"load": "succeeded", "total": "succeeded", "report": "succeeded"}
    assert state["done"] == [3, 3]
    # the run's widget state travelled to the front end as comm messages while it ran
    updates = [m["data"]["state"] for m in run.comm if m.get("data", {}).get("method") == "update"]
    running = [
        u for u in updates if any(v.get("status") == "running" for v in u.get("nodes", {}).values())
    ]
    assert running, "no live 'running' update was sent"
    assert any(u.get("done") == 3 for u in updates)
    # then the run's output became its final picture (static SVG, nothing live)
    assert len(run.updates) == 1 and set(run.updates[0]["data"]) == {"image/svg+xml", "text/plain"}
    final = run.updates[0]["data"]["image/svg+xml"]
    assert statuses(final) == {"load": "succeeded", "total": "succeeded", "report": "succeeded"}
    assert "3/3 tasks · succeeded" in final


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    with kernel(tmp_path) as k:
        k.check("%load_ext cloaca_nb")
        k.check(CELL_LOAD, "c-load")
        wrong = k.run("%cloaca_run --from lod")
        assert wrong.error["ename"] == "TaskSelectionError"
        assert (
            len(wrong.error["traceback"]) == 1
            and "Did you mean 'load'" in wrong.error["traceback"][0]
        )
        assert wrong.data == [] and wrong.comm == []  # nothing drawn before the error
        clash = k.run("@task(id='load')\ndef again(c):\n    return c\n")
        assert clash.error["ename"] == "TaskCellConflictError"
        assert len(clash.error["traceback"]) == 1 and "--forget load" in clash.error["traceback"][0]
        k.check("@task(id='report', dependencies=['totl'])\ndef report(c):\n    return c\n", "c-r")
        unknown = k.run("%cloaca_run")
        assert unknown.error["ename"] == "UnknownDependencyError"
        assert len(unknown.error["traceback"]) == 1 and "'totl'" in unknown.error["traceback"][0]
        for reply in (wrong, clash, unknown):
            text = "\n".join(reply.error["traceback"]) + reply.stderr
            assert "magics.py" not in text and "hooks.py" not in text and "session.py" not in text
        # a bug in the user's own code keeps its full traceback
        bug = k.run("def f():\n    return 1 / 0\nf()")
        assert bug.error["ename"] == "ZeroDivisionError" and len(bug.error["traceback"]) > 1


EDIT_A = """
from cloaca import task

@task(id="a")
def a(context):
    context["a"] = 1
    return context
"""
EDIT_B = """
@task(id="b", dependencies=["a"])
def b(context):
    context["b"] = context["a"] + 1
    return context
"""


def test_edit_and_rerun_a_cell_then_replay(tmp_path: Path) -> None:
    """The issue's JupyterLab case: A, B, edit A and re-run it, then an isolated run."""
    with kernel(tmp_path) as k:
        k.check("%load_ext cloaca_nb")
        k.check(EDIT_A, "cell-a")
        k.check(EDIT_B, "cell-b")
        k.check(EDIT_A.replace('context["a"] = 1', 'context["a"] = 10'), "cell-a")
        run = k.check(
            f"r = %cloaca_run --isolated --workdir {tmp_path / 'iso'}\nprint(r.final_context.to_dict())"
        )
        assert run.stdout.strip().splitlines()[-1] == "{'a': 10, 'b': 11}"
        assert (
            "without encryption" not in run.stdout + run.stderr
        )  # the child kernel's log stays out
        exported = k.check(
            "from cloaca_nb.export import export_project\nimport cloaca_nb\n"
            f"p = export_project(cloaca_nb.get_session(), {str(tmp_path / 'proj')!r})\n"
            "print(p.tasks_file.read_text().count('from cloaca import task'))"
        )
        assert exported.stdout.split()[-1] == "1"


ASYNC_CELL = """
import asyncio
from cloaca import task
KERNEL_LOOP = asyncio.get_running_loop()

@task(id="fetch")
async def fetch(context):
    await asyncio.sleep(0.01)
    context["same_loop"] = asyncio.get_running_loop() is KERNEL_LOOP
    return context
"""


def test_async_tasks_in_a_kernel(tmp_path: Path) -> None:
    with kernel(tmp_path) as k:
        k.check("%load_ext cloaca_nb")
        k.check(ASYNC_CELL)
        # %cloaca_run: the engine's own loop in a helper thread, no "loop already running"
        blocking = k.check(
            "r = %cloaca_run --no-widget\nprint(r.status, r.final_context['same_loop'])"
        )
        assert blocking.stdout.split() == ["Completed", "False"]
        # await cloaca_nb.arun(): awaited on the kernel's running loop
        awaited = k.check(
            "import cloaca_nb\nr = await cloaca_nb.arun(show=False)\n"
            "print(r.status, r.final_context['same_loop'])"
        )
        assert awaited.stdout.split() == ["Completed", "True"]
