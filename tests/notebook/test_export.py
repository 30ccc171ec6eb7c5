"""``%cloaca_build``: static export of cells, pins, errors, and build -> load -> execute."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

import cloaca_nb
from cloaca import TaskRegistry, WorkflowBuilder
from cloaca_nb.errors import ExportError, UnresolvedNameError
from cloaca_nb.export import export_project
from tests.notebook.conftest import RunCell

EXPLORE = "rows = [5, 6]\nrows\nprint('just looking')\n"
HELPERS = (
    "from packaging.version import Version\nimport math\nfrom cloaca import task\n"
    "LIMIT = 10\nCONFIG = {}\nCONFIG['step'] = 2\n\n"
    "class Scaler:\n    factor = LIMIT\n    def apply(self, x):\n        return x * self.factor\n"
    "\ndef major(text):\n    return Version(text).major\n"
)
TASKS = (
    "@task(id='prepare')\ndef prepare(ctx):\n    ctx['v'] = Scaler().apply(CONFIG['step'])\n"
    "    return ctx\n\n@task(id='finish', dependencies=[prepare])\ndef finish(ctx):\n"
    "    ctx['root'] = math.sqrt(ctx['v']) + major('3.1')\n    return ctx\n"
)


def test_export_keeps_exactly_what_tasks_need(cell: RunCell, tmp_path: Path) -> None:
    cell(HELPERS, "h")
    cell(EXPLORE, "e")
    cell(TASKS, "t")
    project = export_project(cloaca_nb.get_session(), tmp_path, name="my-flow", version="1.2.0")
    source = project.tasks_file.read_text()
    assert project.module == "my_flow"
    for needed in ("import math", "LIMIT = 10", "CONFIG['step'] = 2", "class Scaler", "def major",
                   "@task(id='finish', dependencies=[prepare])"):  # fmt: skip
        assert needed in source
    assert "rows" not in source and "just looking" not in source
    compile(source, "tasks.py", "exec")
    pin = f"packaging=={importlib.metadata.version('packaging')}"
    assert project.dependencies == [pin]
    pyproject = (tmp_path / "pyproject.toml").read_text()
    assert pin in pyproject and 'entry_module = "my_flow.tasks"' in pyproject


def test_unknown_name_names_task_and_name(cell: RunCell, tmp_path: Path) -> None:
    cell("from cloaca import task\n@task(id='uses_df')\ndef f(ctx):\n    ctx['n'] = len(df)\n", "x")
    with pytest.raises(UnresolvedNameError) as info:
        export_project(cloaca_nb.get_session(), tmp_path)
    assert (info.value.task_id, info.value.name) == ("uses_df", "df")
    assert "'uses_df' uses the name 'df'" in str(info.value)


def test_local_module_is_copied_and_missing_module_is_an_error(
    cell: RunCell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "lib"
    local.mkdir()
    (local / "nb_helpers_x1.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(local))
    cell("from nb_helpers_x1 import twice\nfrom cloaca import task\n"
         "@task(id='t')\ndef t(ctx):\n    ctx['x'] = twice(2)\n    return ctx\n", "a")  # fmt: skip
    project = export_project(cloaca_nb.get_session(), tmp_path / "proj")
    assert project.local_modules == ["nb_helpers_x1.py"]
    assert (tmp_path / "proj" / "src" / "nb_helpers_x1.py").exists()
    sys.modules.pop("nb_helpers_x1", None)
    cell("try:\n    import not_installed_zz9\nexcept ImportError:\n    pass\n"
         "@task(id='u')\ndef u(ctx):\n    return not_installed_zz9.f(ctx)\n", "b")  # fmt: skip
    with pytest.raises(ExportError, match="not_installed_zz9"):
        export_project(cloaca_nb.get_session(), tmp_path / "proj2")


NOTEBOOK = [
    ("code", "%load_ext cloaca_nb\nfrom cloaca import task\nimport math"),
    ("parameters", "n = 3\nout_dir = 'dist'\nresult_file = 'inkernel.json'"),
    ("code", "def squares(k):\n    return [i * i for i in range(k)]"),
    ("code", "@task(id='load')\ndef load(ctx):\n    ctx['rows'] = squares(ctx['n'])\n    return ctx\n\n"
             "@task(id='total', dependencies=['load'])\ndef total(ctx):\n"
             "    ctx['total'] = sum(ctx['rows'])\n    return ctx\n\n"
             "@task(id='root', dependencies=['total'])\nasync def root(ctx):\n"
             "    ctx['root'] = math.sqrt(ctx['total'])\n    return ctx"),
    ("code", "%cloaca_dag --renderer python"),
    ("code", "res = %cloaca_run --raise -p n={n}\nimport json\n"
             "open(result_file, 'w').write(json.dumps(res.final_context.to_dict()))".replace("{n}", "$n")),
    ("code", "built = %cloaca_build -o $out_dir --name nb-pipeline --version 0.2.0\n[b.path.name for b in built]"),
]  # fmt: skip


@pytest.mark.kernel
@pytest.mark.timeout(240)
def test_papermill_notebook_builds_a_package_the_loader_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOACA_CACHE_DIR", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, source in NOTEBOOK:
        meta = {"tags": ["parameters"]} if kind == "parameters" else {}
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(source), metadata=meta))
    path = tmp_path / "pipeline.ipynb"
    nbformat.write(nb, path)
    out_dir, result_file = tmp_path / "dist", tmp_path / "inkernel.json"
    papermill.execute_notebook(
        str(path), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
        parameters={"n": 5, "out_dir": str(out_dir), "result_file": str(result_file)},
        cwd=str(tmp_path),
    )  # fmt: skip
    inkernel = json.loads(result_file.read_text())
    assert inkernel == {"n": 5, "rows": [0, 1, 4, 9, 16], "total": 30, "root": 30**0.5}
    (archive,) = out_dir.glob("nb-pipeline-0.2.0-*.cloaca")

    from cloaca.registry.loader import PackageLoaderFactory, register_package_tasks
    from cloaca.registry.workers import WorkerPools

    loaded = PackageLoaderFactory(tmp_path / "staging").load(archive.read_bytes())
    assert loaded.task_ids == ["load", "total", "root"]
    registry = TaskRegistry()
    with WorkerPools() as pools:
        register_package_tasks(registry, loaded, pools=pools)
        result = WorkflowBuilder("nb").with_registry(registry).build().run({"n": 5})
    assert result.status == "Completed"
    assert result.final_context.to_dict() == inkernel


def test_build_magic_without_tasks_is_an_error(ip: Any) -> None:
    from cloaca_nb.errors import NoTasksError

    with pytest.raises(NoTasksError):
        ip.run_line_magic("cloaca_build", "-o /nonexistent")


def test_uncarriable_callback_fails_before_anything_is_written(
    cell: RunCell, tmp_path: Path
) -> None:
    from cloaca.errors import TaskOptionError

    cell("from cloaca import task\n\n@task(id='t', on_success=lambda tid, ctx: None)\n"
         "def t(ctx):\n    return ctx\n", "lam")  # fmt: skip
    with pytest.raises(TaskOptionError, match=r"task 't', option on_success: is a lambda") as info:
        export_project(cloaca_nb.get_session(), tmp_path / "project")
    assert info.value.field == "on_success"
    assert not (tmp_path / "project").exists()


def test_cell_callback_and_rules_are_carried_into_the_manifest(
    cell: RunCell, tmp_path: Path
) -> None:
    from cloaca.packaging import plan_build

    cell("from cloaca import task, context_value\n\ndef done(task_id, ctx):\n    pass\n\n"
         "@task(id='t', on_success=done, trigger_rules=context_value('go', 'Equals', True),\n"
         "      retry_attempts=2, retry_delay_ms=250, timeout_seconds=0.5)\n"
         "def t(ctx):\n    return ctx\n", "cb")  # fmt: skip
    export_project(cloaca_nb.get_session(), tmp_path, name="cb-flow")
    (entry,) = plan_build(tmp_path).tasks
    assert entry.on_success == "cb_flow.tasks:done"
    assert entry.retry is not None and entry.retry.initial_delay_seconds == 0.25
    assert entry.timeout_seconds == 0.5 and entry.trigger_rules is not None


def test_build_magic_python_defaults_to_the_kernels(
    ip: Any, cell: RunCell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setenv("CLOACA_CACHE_DIR", str(tmp_path / "cache"))
    cell("from cloaca import task\n\n@task(id='t')\ndef t(ctx):\n    return ctx\n", "py")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    (one,) = ip.run_line_magic("cloaca_build", f"-o {tmp_path / 'a'} --target linux-x86_64")
    assert one.path.name == "notebook-tasks-0.1.0-linux-x86_64.cloaca"
    assert one.manifest.python.python_version == here
    built = ip.run_line_magic(
        "cloaca_build", f"-o {tmp_path / 'b'} --target linux-x86_64 --python 3.12 --python 3.11"
    )
    assert [(b.path.name, b.manifest.python.python_version) for b in built] == [
        ("notebook-tasks-0.1.0-linux-x86_64-py312.cloaca", "3.12"),
        ("notebook-tasks-0.1.0-linux-x86_64-py311.cloaca", "3.11"),
    ]
