"""``build_package``: project directory in, one ``.cloaca`` archive per target out.

The orchestration only; each step lives in its own module (:mod:`.project`, :mod:`.discovery`,
:mod:`.tasks`, :mod:`.lock`, :mod:`.vendor`, :mod:`.archive`, :mod:`.cache`). Targets are built in
parallel threads (uv and zlib release the GIL). Every archive is first written to a temporary file;
only when all targets succeeded are they renamed into place, so a failed build leaves nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from packaging.specifiers import SpecifierSet

from cloaca.errors import BuildError
from cloaca.packaging.archive import (
    DEFAULT_MTIME,
    Member,
    member_fingerprint,
    tree_members,
    write_archive,
)
from cloaca.packaging.cache import BuildCache, cache_key
from cloaca.packaging.discovery import discover_tasks, module_path
from cloaca.packaging.lock import Runner, compile_lock, find_uv, run
from cloaca.packaging.manifest import Manifest, PackageInfo, PythonInfo, TaskEntry, parse_manifest
from cloaca.packaging.project import Project, load_project
from cloaca.packaging.targets import python_platform, resolve_targets
from cloaca.packaging.tasks import merge_tasks
from cloaca.packaging.vendor import install_vendor

log = logging.getLogger(__name__)

#: ``progress(target, stage, message)``; stages: lock, vendor, archive, cached, done
ProgressCallback = Callable[[str, str, str], None]


@dataclass(frozen=True)
class BuiltPackage:
    """One archive written by :func:`build_package` (``cached``: reused from the build cache)."""

    path: Path
    target: str
    manifest: Manifest
    cached: bool = False


@dataclass(frozen=True)
class BuildPlan:
    """What a build will produce, computed without touching the network (``--dry-run``)."""

    project: Project
    targets: list[str]
    python_version: str
    out_dir: Path
    tasks: list[TaskEntry]
    sources: list[Member]

    def archive_path(self, target: str) -> Path:
        """Return the archive path for ``target``: ``{name}-{version}-{target}.cloaca``."""
        return self.out_dir / f"{self.project.name}-{self.project.version}-{target}.cloaca"


def plan_build(
    project_dir: str | Path,
    out_dir: str | Path | None = None,
    targets: Sequence[str] | None = None,
    *,
    python_version: str | None = None,
) -> BuildPlan:
    """Read and check a project: pyproject, targets, Python version, sources and tasks.

    Parameters are those of :func:`build_package`. Nothing is written and uv is not run.

    Raises
    ------
    BuildError
        For every problem found before locking (see :func:`build_package`).
    """
    project = load_project(project_dir)
    chosen = resolve_targets(targets)
    version = _python_version(project, python_version)
    found = discover_tasks(project.source_root, project.entry_module)
    tasks = merge_tasks(found, project.task_overrides, project.root)
    out = Path(out_dir) if out_dir is not None else project.root / "dist"
    return BuildPlan(project, chosen, version, out.resolve(), tasks, _sources(project))


def build_package(
    project_dir: str | Path,
    out_dir: str | Path | None = None,
    targets: Sequence[str] | None = None,
    *,
    python_version: str | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    runner: Runner = run,
) -> list[BuiltPackage]:
    """Build one ``.cloaca`` archive per target for the project in ``project_dir``.

    Parameters
    ----------
    project_dir:
        Directory holding ``pyproject.toml``.
    out_dir:
        Where archives go (created); default ``<project_dir>/dist``.
    targets:
        Target names (``linux-x86_64``, ``macos-arm64`` ...); default the host's.
    python_version:
        ``X.Y`` to lock and vendor for; default the running interpreter's. Must satisfy the
        project's ``requires-python``.
    progress:
        Called as ``progress(target, stage, message)`` from worker threads.
    cache_dir, use_cache:
        The build cache directory (default ``$CLOACA_CACHE_DIR`` or ``~/.cache/cloaca``) and
        whether to use it.
    runner:
        Runs the uv command lines (injectable for tests).

    Returns
    -------
    list[BuiltPackage]
        One per target, in the order of ``targets``.

    Raises
    ------
    BuildError
        Missing pyproject or entry module, no tasks, a duplicate id, an unknown dependency, a
        cycle, an unknown target, an unresolvable or sdist-only dependency, uv missing. No
        archive is left behind when any target fails.
    """
    plan = plan_build(project_dir, out_dir, targets, python_version=python_version)
    cache = BuildCache(Path(cache_dir) if cache_dir else None, enabled=use_cache)
    epoch = _source_date_epoch()
    notify = progress or (lambda target, stage, message: None)
    uv = find_uv() if plan.project.dependencies else None
    src_digest = member_fingerprint(plan.sources)
    with tempfile.TemporaryDirectory(prefix="cloaca-build-") as scratch:

        def one(target: str) -> tuple[Path, BuiltPackage]:
            job = _TargetBuild(plan, target, cache, epoch, src_digest, notify, uv, runner)
            return job.build(Path(scratch) / target)

        with ThreadPoolExecutor(max_workers=max(1, len(plan.targets))) as pool:
            futures = [pool.submit(one, t) for t in plan.targets]
            results, errors = [], []
            for fut in futures:
                try:
                    results.append(fut.result())
                except BaseException as exc:  # keep going to clean up every temp file
                    errors.append(exc)
        if errors:
            for tmp, _ in results:
                tmp.unlink(missing_ok=True)
            raise errors[0]
        for tmp, built in results:
            os.replace(tmp, built.path)
            notify(built.target, "done", str(built.path))
    return [built for _, built in results]


@dataclass
class _TargetBuild:
    plan: BuildPlan
    target: str
    cache: BuildCache
    epoch: int | None
    src_digest: str
    notify: ProgressCallback
    uv: str | None
    runner: Runner

    def build(self, scratch: Path) -> tuple[Path, BuiltPackage]:
        project, pyver = self.plan.project, self.plan.python_version
        platform = python_platform(self.target)
        dest = self.plan.archive_path(self.target)
        self.notify(self.target, "lock", f"locking dependencies for {platform}, Python {pyver}")
        lock_key = cache_key("lock", project.dependencies, project.requires_python, platform, pyver)
        lock, _ = self.cache.lock(
            lock_key,
            lambda: compile_lock(
                project.dependencies, platform, pyver, self.target, uv=self.uv, runner=self.runner
            ),
        )
        archive_key = cache_key(
            "archive", project.pyproject_bytes.hex(), self.src_digest, lock, self.target, pyver,
            self.epoch,
        )  # fmt: skip
        hit = self.cache.archive(archive_key)
        if hit is not None:
            path, meta = hit
            self.notify(self.target, "cached", "inputs unchanged: reusing the cached archive")
            tmp = _copy_beside(path, dest)
            return tmp, BuiltPackage(dest, self.target, parse_manifest(meta), cached=True)
        self.notify(self.target, "vendor", f"installing {lock.count('==')} locked wheel(s)")
        vendor_key = cache_key("vendor", lock, platform, pyver)
        tree, _ = self.cache.vendor(
            vendor_key,
            lambda d: install_vendor(
                lock, d, platform, pyver, self.target, uv=self.uv, runner=self.runner
            ),
            scratch,
        )
        self.notify(self.target, "archive", f"writing {dest.name}")
        members = [
            Member("requirements.lock", data=lock.encode("utf-8")),
            *self.plan.sources,
            *tree_members(tree, "vendor", skip_egg_info=False),
        ]
        manifest = self._manifest(member_fingerprint(members))
        members.append(Member("manifest.json", data=manifest.to_json().encode("utf-8")))
        tmp = write_archive(members, dest, mtime=self.epoch or DEFAULT_MTIME)
        self.cache.store_archive(archive_key, tmp, manifest.to_json())
        return tmp, BuiltPackage(dest, self.target, manifest)

    def _manifest(self, fingerprint: str) -> Manifest:
        project = self.plan.project
        stamp = datetime.fromtimestamp(self.epoch, UTC) if self.epoch is not None else None
        return Manifest(
            format_version="2",
            package=PackageInfo(
                name=project.name,
                version=project.version,
                description=project.description,
                fingerprint=fingerprint,
                targets=[self.target],
            ),
            language="python",
            python=PythonInfo(
                requires_python=project.requires_python, entry_module=project.entry_module
            ),
            tasks=self.plan.tasks,
            created_at=(stamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


def _copy_beside(source: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o644)
    return Path(tmp)


def _sources(project: Project) -> list[Member]:
    if project.source_root != project.root:  # src layout: ship src/ as is
        return tree_members(project.source_root, "src")
    top = project.entry_module.split(".")[0]  # flat layout: ship the entry's top-level package
    path = module_path(project.root, top)
    assert path is not None  # discovery found the entry module already
    if path.name == "__init__.py":
        return [Member("src"), *tree_members(path.parent, f"src/{top}")]
    return [Member("src"), Member(f"src/{path.name}", source=path)]


def _python_version(project: Project, requested: str | None) -> str:
    version = requested or f"{sys.version_info.major}.{sys.version_info.minor}"
    if not re.fullmatch(r"3\.\d{1,2}", version):
        raise BuildError(f"--python-version must look like 3.12, got {version!r}.")
    spec = project.requires_python
    if spec and not SpecifierSet(spec).contains(f"{version}.0", prereleases=True):
        origin = "requested" if requested else "this interpreter's"
        raise BuildError(
            f"Python {version} ({origin}) does not satisfy requires-python {spec!r}. "
            "Pass --python-version with a version it allows.",
            path=str(project.root),
        )
    return version


def _source_date_epoch() -> int | None:
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise BuildError(f"SOURCE_DATE_EPOCH must be an integer, got {raw!r}.") from exc
    if value < 0:
        raise BuildError(f"SOURCE_DATE_EPOCH must be >= 0, got {value}.")
    return value
