"""The session's tasks as a ``.cloaca`` archive for ``%cloaca_run --server``, rebuilt only
when the tasks changed.

The archive is made by the notebook export (:func:`cloaca_nb.export.export_project`) and the
engine's builder (:func:`cloaca.packaging.build_package`, with its build cache), like
``%cloaca_build``. Its version is ``0.1.0+nb.<digest>``: the digest hashes the exported project
(the generated ``tasks.py`` compared as code, so re-running a cell, which renumbers the cell
labels in its comments, changes nothing) and the Python it is built for, so a server that
already has this version has these tasks. It is built for the kernel's Python unless the server
cannot run that one (:func:`build_python`). Archives are kept in
``<build cache>/notebook-archives/`` and reused by version.

Four levels make an unchanged session cheap:

1. in this kernel, the same cells (sources, run order, task ids) and unchanged local modules →
   the archive of the last call (nothing analysed, exported or built);
2. other cells ran since (inspecting a result, say) but the statements the tasks need
   (:func:`cloaca_nb.analysis.needed_statements`) are the same → that archive too;
3. the exported project's digest names an archive already written → that archive;
4. otherwise :func:`~cloaca.packaging.build_package`, whose own cache may still hit.

Levels 1 and 2 cost microseconds and milliseconds; the export (3) reads the installed
distributions' metadata to pin versions, which takes a few hundred milliseconds.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cloaca.packaging.cache import default_cache_dir
from cloaca.packaging.targets import host_target
from cloaca_nb.errors import ExportError
from cloaca_nb.session import NotebookSession

BASE_VERSION = "0.1.0"
_PLACEHOLDER = "0.0.0"
_VERSION_LINE = re.compile(rf'^version = "{re.escape(_PLACEHOLDER)}"$', re.MULTILINE)
_NOT_CODE = ("%", "!", "#")
KERNEL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class SessionPackage:
    """The archive of the session's tasks.

    ``built`` is False when this kernel reused the archive of its last call (nothing exported
    or built); ``cache_hit`` is True when the archive came from the build cache or the archive
    directory rather than a fresh build.
    """

    name: str
    version: str
    path: Path
    built: bool
    cache_hit: bool
    python: str = KERNEL_PYTHON


@dataclass
class _Entry:
    signature: str
    statements: str
    local_files: tuple[tuple[str, int, int], ...]
    package: SessionPackage


_memo: weakref.WeakKeyDictionary[NotebookSession, dict[tuple[str, str], _Entry]] = (
    weakref.WeakKeyDictionary()
)


def build_python(server_pythons: Sequence[str]) -> str:
    """The ``X.Y`` to build the session for a server advertising ``server_pythons`` (its
    ``GET /health`` ``pythons``): the kernel's when the server runs it or says nothing, else
    the server's first (its own)."""
    if not server_pythons or KERNEL_PYTHON in server_pythons:
        return KERNEL_PYTHON
    return server_pythons[0]


def archive_dir() -> Path:
    """Where notebook archives are kept: ``<build cache>/notebook-archives``."""
    return default_cache_dir() / "notebook-archives"


def session_signature(session: NotebookSession, name: str, python: str = KERNEL_PYTHON) -> str:
    """A hash of what the export reads from the session: code cells in run order, task ids.

    Cells holding only magics, shell escapes and comments (``%cloaca_run --server`` itself)
    are left out, so running the magic again does not change it.
    """
    h = hashlib.sha256(repr((name, python, session.task_ids())).encode())
    for cell in sorted(session.cells.values(), key=lambda c: c.sequence):
        lines = [ln.strip() for ln in cell.source.splitlines()]
        if all(not ln or ln.startswith(_NOT_CODE) for ln in lines):
            continue
        h.update(repr((cell.key, cell.source, cell.failed)).encode())
    return h.hexdigest()


def statements_signature(session: NotebookSession, name: str, python: str = KERNEL_PYTHON) -> str:
    """A hash of the statements the session's tasks need, in notebook order."""
    from cloaca_nb.analysis import needed_statements

    ids = session.task_ids()
    h = hashlib.sha256(repr((name, python, ids)).encode())
    for stmt in needed_statements(session, ids):
        h.update(stmt.source.encode() + b"\0")
    return h.hexdigest()


def project_digest(root: Path, tasks_file: Path, python: str = KERNEL_PYTHON) -> str:
    """A hash of an exported project built for ``python``; ``tasks_file`` is compared as code
    (comments ignored)."""
    h = hashlib.sha256(python.encode() + b"\0")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        if path == tasks_file:
            h.update(ast.dump(ast.parse(path.read_text(encoding="utf-8"))).encode())
        else:
            h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _local_files(names: list[str]) -> tuple[tuple[str, int, int], ...]:
    """``(path, mtime_ns, size)`` of the local modules the export copied (as imported here)."""
    found: list[Path] = []
    for name in names:
        module = sys.modules.get(name.removesuffix(".py"))
        origin = getattr(module, "__file__", None)
        if origin is None:
            continue
        path = Path(origin)
        found += sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    stats = []
    for path in found:
        try:
            st = path.stat()
        except OSError:
            continue
        stats.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(stats)


def _files_unchanged(entry: _Entry) -> bool:
    if not entry.package.path.is_file():
        return False
    for path, mtime, size in entry.local_files:
        try:
            st = Path(path).stat()
        except OSError:
            return False
        if (st.st_mtime_ns, st.st_size) != (mtime, size):
            return False
    return True


def _reuse(entry: _Entry) -> SessionPackage:
    old = entry.package
    return SessionPackage(old.name, old.version, old.path, False, True, old.python)


def session_package(
    session: NotebookSession, name: str = "notebook-tasks", python: str = KERNEL_PYTHON
) -> SessionPackage:
    """The archive of the session's tasks for Python ``python`` (``X.Y``; vendored for it by
    the builder), built only when they changed (module docstring).

    Raises
    ------
    NoTasksError, WorkflowValidationError, UnresolvedNameError, ExportError
        From the export, before anything is built.
    BuildError
        From the builder.
    """
    from cloaca.packaging import build_package
    from cloaca_nb.export import export_project

    signature = session_signature(session, name, python)
    entries = _memo.setdefault(session, {})
    entry = entries.get((name, python))
    statements = None
    if entry is not None and _files_unchanged(entry):
        if entry.signature == signature:
            return _reuse(entry)
        statements = statements_signature(session, name, python)
        if entry.statements == statements:
            entry.signature = signature
            return _reuse(entry)
    statements = statements or statements_signature(session, name, python)
    out = archive_dir()
    with tempfile.TemporaryDirectory(prefix="cloaca-nb-server-") as tmp:
        project = export_project(session, tmp, name=name, version=_PLACEHOLDER, pythons=[python])
        digest = project_digest(project.root, project.tasks_file, python)
        version = f"{BASE_VERSION}+nb.{digest[:12]}"
        path = out / f"{name}-{version}-{host_target()}.cloaca"
        cache_hit = path.is_file()
        if not cache_hit:
            _set_version(project.root / "pyproject.toml", version)
            (built,) = build_package(project.root, out, python_version=python)
            path, cache_hit = built.path, built.cached
        local = _local_files(project.local_modules)
    package = SessionPackage(name, version, path, True, cache_hit, python)
    entries[(name, python)] = _Entry(signature, statements, local, package)
    return package


def _set_version(pyproject: Path, version: str) -> None:
    text = pyproject.read_text(encoding="utf-8")
    new, count = _VERSION_LINE.subn(f'version = "{version}"', text, count=1)
    if count != 1:  # the export's pyproject layout changed under us
        raise ExportError(f"cannot set the package version in {pyproject}", name="version")
    pyproject.write_text(new, encoding="utf-8")
