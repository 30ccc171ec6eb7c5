"""Reading a project: ``pyproject.toml`` (``[project]`` and ``[tool.cloaca]``) and its source root.

:func:`load_project` turns a project directory into a frozen :class:`Project`, raising
:class:`~cloaca.errors.BuildError` for everything a build cannot start without.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from cloaca.errors import BuildError
from cloaca.packaging.tasks import TABLE_KEYS as _OVERRIDE_KEYS


@dataclass(frozen=True)
class Project:
    """What ``cloaca build`` reads from a project directory.

    ``source_root`` is the directory put on ``sys.path`` (``src/`` when it exists, else the
    project directory); ``task_overrides`` is ``[tool.cloaca.tasks]`` as a plain dict.
    """

    root: Path
    name: str
    version: str
    description: str | None
    requires_python: str | None
    dependencies: tuple[str, ...]
    entry_module: str
    source_root: Path
    task_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    pyproject_bytes: bytes = b""
    python_versions: tuple[str, ...] = ()


def _fail(root: Path, message: str) -> BuildError:
    return BuildError(message, path=str(root))


def load_project(project_dir: str | Path) -> Project:
    """Read ``pyproject.toml`` in ``project_dir``.

    Parameters
    ----------
    project_dir:
        The project directory (the one holding ``pyproject.toml``).

    Returns
    -------
    Project

    Raises
    ------
    BuildError
        No ``pyproject.toml``, invalid TOML, missing ``[project] name``/``version``, missing
        ``[tool.cloaca] entry_module``, a malformed ``[tool.cloaca.tasks]`` table or
        ``[tool.cloaca] python`` list.
    """
    root = Path(project_dir).resolve()
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        raise _fail(
            root,
            "no pyproject.toml found. Run `cloaca build` in a project directory, or pass its path "
            "(`cloaca build path/to/project`).",
        )
    raw = pyproject.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(root, f"pyproject.toml is not valid TOML: {exc}") from exc
    proj = data.get("project") or {}
    name, version = proj.get("name"), proj.get("version")
    if not isinstance(name, str) or not name:
        raise _fail(root, 'pyproject.toml has no [project] name. Add `name = "my-package"`.')
    if not isinstance(version, str) or not version:
        raise _fail(
            root, 'pyproject.toml has no static [project] version. Add `version = "0.1.0"`.'
        )
    try:
        Version(version)
    except InvalidVersion as exc:
        raise _fail(root, f"[project] version {version!r} is not a PEP 440 version.") from exc
    requires_python = proj.get("requires-python")
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as exc:
            raise _fail(root, f"[project] requires-python {requires_python!r} is invalid.") from exc
    deps = proj.get("dependencies") or []
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise _fail(root, "[project] dependencies must be a list of requirement strings.")
    tool = (data.get("tool") or {}).get("cloaca") or {}
    entry = tool.get("entry_module")
    if not isinstance(entry, str) or not entry:
        raise _fail(
            root,
            "pyproject.toml has no [tool.cloaca] entry_module. Add a table\n"
            '  [tool.cloaca]\n  entry_module = "my_package.tasks"\n'
            "naming the module that defines your @task functions.",
        )
    src = root / "src"
    return Project(
        root=root,
        name=name,
        version=version,
        description=proj.get("description") or None,
        requires_python=requires_python,
        dependencies=tuple(deps),
        entry_module=entry,
        source_root=src if src.is_dir() else root,
        task_overrides=_task_overrides(root, tool.get("tasks") or {}),
        pyproject_bytes=raw,
        python_versions=_python_versions(root, tool.get("python")),
    )


def _python_versions(root: Path, value: Any) -> tuple[str, ...]:
    """``[tool.cloaca] python``: the ``X.Y`` versions to build for (a string or a list)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list)
        or not items
        or not all(isinstance(v, str) and re.fullmatch(r"3\.\d{1,2}", v) for v in items)
    ):
        raise _fail(
            root,
            f"[tool.cloaca] python must be a list of X.Y versions, e.g. python = "
            f'["3.11", "3.12"]; got {value!r}.',
        )
    return tuple(dict.fromkeys(items))


def _task_overrides(root: Path, table: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict):
        raise _fail(root, "[tool.cloaca.tasks] must be a table of task id -> options.")
    out: dict[str, dict[str, Any]] = {}
    for task_id, opts in table.items():
        if not isinstance(opts, dict):
            raise _fail(root, f"[tool.cloaca.tasks] entry {task_id!r} must be a table.")
        unknown = sorted(set(opts) - set(_OVERRIDE_KEYS))
        if unknown:
            raise _fail(
                root,
                f"[tool.cloaca.tasks.{task_id!r}] has unknown key(s) {unknown}; "
                f"allowed: {', '.join(_OVERRIDE_KEYS)}.",
            )
        out[task_id] = dict(opts)
    return out


def python_versions_for(
    project: Project, requested: str | None = None, several: Sequence[str] | None = None
) -> list[str]:
    """The ``X.Y`` versions to build ``project`` for: ``requested`` and ``several`` (the
    ``--python`` flags), else ``[tool.cloaca] python``, else this interpreter's.

    Raises
    ------
    BuildError
        A version is malformed or outside ``requires-python``.
    """
    asked = [*([requested] if requested else []), *(several or ())]
    if asked:
        versions, origin = asked, "requested"
    elif project.python_versions:
        versions, origin = list(project.python_versions), "[tool.cloaca] python"
    else:
        versions = [f"{sys.version_info.major}.{sys.version_info.minor}"]
        origin = "this interpreter's"
    spec = project.requires_python
    for version in versions:
        if not re.fullmatch(r"3\.\d{1,2}", version):
            raise BuildError(f"--python must look like 3.12, got {version!r}.")
        if spec and not SpecifierSet(spec).contains(f"{version}.0", prereleases=True):
            raise BuildError(
                f"Python {version} ({origin}) does not satisfy requires-python {spec!r}. "
                "Pass --python with a version it allows.",
                path=str(project.root),
            )
    return list(dict.fromkeys(versions))
