"""``%cloaca_build``: the session's tasks as a standard project, then the engine's builder.

The statements the tasks need (:mod:`cloaca_nb.analysis`) become ``src/<module>/tasks.py``, cell
by cell, in notebook order. Their third-party imports are mapped to installed distributions and
pinned to the versions in this kernel (``name==version``); modules imported from local files next
to the notebook are copied into ``src/``; the standard library and the engine itself
(``cloaca``, ``cloaca_nb``) are left out. :func:`cloaca.packaging.build_package` then locks,
vendors and archives the project exactly as ``cloaca build`` does.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloaca.packaging import spec_to_entry
from cloaca_nb.analysis import Statement, needed_statements
from cloaca_nb.errors import ExportError
from cloaca_nb.session import NotebookSession

_PROVIDED = {"cloaca", "cloaca_nb", "__future__"}
_PYPROJECT = """\
[project]
name = "{name}"
version = "{version}"
description = "Tasks exported from a notebook by %cloaca_build"
requires-python = ">={py}"
dependencies = {deps}

[tool.cloaca]
entry_module = "{module}.tasks"
"""


@dataclass(frozen=True)
class ExportedProject:
    """A project written by :func:`export_project`."""

    root: Path
    module: str
    dependencies: list[str]
    local_modules: list[str]

    @property
    def tasks_file(self) -> Path:
        """``src/<module>/tasks.py``."""
        return self.root / "src" / self.module / "tasks.py"


def _imports(statements: Sequence[Statement]) -> list[tuple[str, Statement]]:
    found = []
    for stmt in statements:  # imports anywhere: top level, in try blocks, in task bodies
        for node in ast.walk(stmt.node):
            if isinstance(node, ast.Import):
                found += [(alias.name.split(".")[0], stmt) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.module.split(".")[0], stmt))
    return found


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return [p for p in (paths.get("purelib"), paths.get("platlib"), paths.get("stdlib")) if p]


def requirements(statements: Sequence[Statement]) -> tuple[list[str], list[Path]]:
    """Pinned distributions (``name==version``) and local module paths the imports need.

    Raises
    ------
    ExportError
        An imported module is not installed at all.
    """
    dists_of = importlib.metadata.packages_distributions()
    pins: dict[str, str] = {}
    local: list[Path] = []
    for top, stmt in _imports(statements):
        if top in _PROVIDED or top in sys.stdlib_module_names:
            continue
        dists = dists_of.get(top)
        if dists:
            dist = dists[0]
            pins[dist.lower()] = f"{dist}=={importlib.metadata.version(dist)}"
            continue
        spec = importlib.util.find_spec(top)
        if spec is None or spec.origin is None:
            raise ExportError(
                f"{stmt.cell.label} imports {top!r}, which is not installed in this kernel. "
                "Install it (pip/uv) or remove the import.",
                name=top,
            )
        origin = Path(spec.origin)
        if origin.suffix == ".py" and not any(str(origin).startswith(d) for d in _site_dirs()):
            local.append(origin.parent if origin.name == "__init__.py" else origin)
    return sorted(pins.values()), local


def _module_source(statements: Sequence[Statement]) -> str:
    parts = ['"""Tasks exported from a notebook by %cloaca_build (cells in notebook order)."""']
    current = None
    for stmt in statements:
        if stmt.cell.key != current:
            current = stmt.cell.key
            parts.append(f"# ---- {stmt.cell.label}")
        parts.append(stmt.source)
    return "\n\n".join(parts) + "\n"


def _xy(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def export_project(
    session: NotebookSession,
    project_dir: str | Path,
    *,
    name: str | None = None,
    version: str | None = None,
    module: str | None = None,
    task_ids: Sequence[str] | None = None,
    pythons: Sequence[str] | None = None,
) -> ExportedProject:
    """Write a ``cloaca build`` project for the session's tasks into ``project_dir``.

    Its ``requires-python`` is ``>=`` the oldest of the kernel's Python and ``pythons`` (the
    ``X.Y`` versions it will be built for).

    Raises
    ------
    NoTasksError, WorkflowValidationError
        Nothing to export, or the DAG is invalid.
    UnresolvedNameError
        A task needs a name no cell defines.
    TaskOptionError
        A task option the manifest cannot carry (a lambda or closure callback ...).
    ExportError
        A task is not a top-level ``def`` or an import is not installed.
    """
    session.workflow()  # the DAG must be valid before exporting it
    ids = list(task_ids or session.task_ids())
    name = name or "notebook-tasks"
    module = module or re.sub(r"\W", "_", name.replace("-", "_")).lower()
    # every option must be carriable before anything is written (a lambda callback, say):
    # the engine's one converter says so, with the cells' functions renamed into the module
    specs = session.specs()
    for task_id in ids:
        spec_to_entry(specs[task_id], modules={"__main__": f"{module}.tasks"})
    statements = needed_statements(session, ids)
    pins, local = requirements(statements)
    root = Path(project_dir)
    package = root / "src" / module
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "tasks.py").write_text(_module_source(statements), encoding="utf-8")
    for path in local:
        dest = root / "src" / path.name
        if path.is_dir():
            shutil.copytree(path, dest, dirs_exist_ok=True)
        else:
            shutil.copyfile(path, dest)
    deps = "[" + ", ".join(f'"{p}"' for p in pins) + "]"
    py = min([f"{sys.version_info.major}.{sys.version_info.minor}", *(pythons or ())], key=_xy)
    (root / "pyproject.toml").write_text(
        _PYPROJECT.format(name=name, version=version or "0.1.0", py=py, deps=deps, module=module),
        encoding="utf-8",
    )
    return ExportedProject(root, module, pins, [p.name for p in local])


def build_session(
    session: NotebookSession,
    out_dir: str | Path = "dist",
    targets: Sequence[str] | None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    module: str | None = None,
    project_dir: str | Path | None = None,
    **build_options: Any,
) -> list[Any]:
    """Export the session (:func:`export_project`) and build it with
    :func:`cloaca.packaging.build_package`; return its ``BuiltPackage`` list.

    ``project_dir`` keeps the generated project (default: a temporary directory);
    ``build_options`` go to ``build_package`` (``cache_dir``, ``use_cache``, ``python_version``,
    ``python_versions``).
    """
    from cloaca.packaging import build_package

    out = Path(out_dir).resolve()
    pythons = [
        *([build_options["python_version"]] if build_options.get("python_version") else []),
        *(build_options.get("python_versions") or ()),
    ]
    if project_dir is not None:
        export_project(
            session, project_dir, name=name, version=version, module=module, pythons=pythons
        )
        return list(build_package(project_dir, out, targets, **build_options))
    with tempfile.TemporaryDirectory(prefix="cloaca-nb-build-") as tmp:
        export_project(session, tmp, name=name, version=version, module=module, pythons=pythons)
        return list(build_package(tmp, out, targets, **build_options))
