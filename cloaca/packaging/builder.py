"""``build_package``: project directory in, one ``.cloaca`` archive per (target, Python) out.

The orchestration only; each step lives in its own module (:mod:`.project`, :mod:`.discovery`,
:mod:`.tasks`, :mod:`.lock`, :mod:`.vendor`, :mod:`.archive`, :mod:`.cache`). Targets are built in
parallel threads (uv and zlib release the GIL). With one Python version (the usual case) an
archive is ``{name}-{version}-{target}.cloaca``; with several, each gets its own archive named
``{name}-{version}-{target}-py{XY}.cloaca`` (see :meth:`BuildPlan.archive_path`). Every archive
is first written to a temporary file; only when all targets succeeded are they renamed into
place, so a failed build leaves nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
from cloaca.packaging.manifest import (
    Manifest,
    PackageInfo,
    PythonInfo,
    TaskEntry,
    VendoredWheel,
    parse_manifest,
)
from cloaca.packaging.project import Project, load_project, python_versions_for
from cloaca.packaging.targets import python_platform, resolve_targets
from cloaca.packaging.tasks import merge_tasks
from cloaca.packaging.vendor import install_vendor
from cloaca.packaging.wheels import read_wheels, vendored_set_problem

log = logging.getLogger(__name__)

#: ``progress(target, stage, message)``; stages: lock, vendor, archive, cached, done. With
#: several Python versions ``target`` reads ``linux-x86_64 py3.12``.
ProgressCallback = Callable[[str, str, str], None]


@dataclass(frozen=True)
class BuiltPackage:
    """One archive written by :func:`build_package` (``cached``: reused from the build cache)."""

    path: Path
    target: str
    manifest: Manifest
    cached: bool = False
    python_version: str = ""


@dataclass(frozen=True)
class BuildPlan:
    """What a build will produce, computed without touching the network (``--dry-run``)."""

    project: Project
    targets: list[str]
    python_versions: list[str]
    out_dir: Path
    tasks: list[TaskEntry]
    sources: list[Member]

    @property
    def python_version(self) -> str:
        """The first (with one, the only) Python version built for."""
        return self.python_versions[0]

    def jobs(self) -> list[tuple[str, str]]:
        """Every ``(target, python_version)`` to build, targets first."""
        return [(t, v) for t in self.targets for v in self.python_versions]

    def archive_path(self, target: str, python_version: str | None = None) -> Path:
        """The archive path of one job: ``{name}-{version}-{target}.cloaca`` when the build is
        for one Python, ``{name}-{version}-{target}-py{XY}.cloaca`` (``-py312``) when it is for
        several."""
        stem = f"{self.project.name}-{self.project.version}-{target}"
        if len(self.python_versions) > 1:
            stem += "-py" + (python_version or self.python_version).replace(".", "")
        return self.out_dir / f"{stem}.cloaca"


def plan_build(
    project_dir: str | Path,
    out_dir: str | Path | None = None,
    targets: Sequence[str] | None = None,
    *,
    python_version: str | None = None,
    python_versions: Sequence[str] | None = None,
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
    versions = python_versions_for(project, python_version, python_versions)
    found = discover_tasks(project.source_root, project.entry_module)
    tasks = merge_tasks(found, project.task_overrides, project.root)
    out = Path(out_dir) if out_dir is not None else project.root / "dist"
    return BuildPlan(project, chosen, versions, out.resolve(), tasks, _sources(project))


def build_package(
    project_dir: str | Path,
    out_dir: str | Path | None = None,
    targets: Sequence[str] | None = None,
    *,
    python_version: str | None = None,
    python_versions: Sequence[str] | None = None,
    progress: ProgressCallback | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    runner: Runner = run,
) -> list[BuiltPackage]:
    """Build one ``.cloaca`` archive per target and Python version for the project in
    ``project_dir``.

    Parameters
    ----------
    project_dir:
        Directory holding ``pyproject.toml``.
    out_dir:
        Where archives go (created); default ``<project_dir>/dist``.
    targets:
        Target names (``linux-x86_64``, ``macos-arm64`` ...); default the host's.
    python_version, python_versions:
        ``X.Y`` (or several) to lock and vendor for; default ``[tool.cloaca] python``, else the
        running interpreter's. Each must satisfy the project's ``requires-python``.
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
        One per (target, Python version), targets first, in the order given.

    Raises
    ------
    BuildError
        Missing pyproject or entry module, no tasks, a duplicate id, an unknown dependency, a
        cycle, an unknown target, an unresolvable or sdist-only dependency, a vendored wheel
        for another platform or Python, uv missing. No archive is left behind when any
        target fails.
    """
    plan = plan_build(
        project_dir,
        out_dir,
        targets,
        python_version=python_version,
        python_versions=python_versions,
    )
    cache = BuildCache(Path(cache_dir) if cache_dir else None, enabled=use_cache)
    epoch = _source_date_epoch()
    notify = progress or (lambda target, stage, message: None)
    uv = find_uv() if plan.project.dependencies else None
    src_digest = member_fingerprint(plan.sources)
    with tempfile.TemporaryDirectory(prefix="cloaca-build-") as scratch:

        def one(target: str, pyver: str) -> tuple[Path, BuiltPackage]:
            job = _TargetBuild(plan, target, pyver, cache, epoch, src_digest, notify, uv, runner)
            return job.build(Path(scratch) / f"{target}-{pyver}")

        jobs = plan.jobs()
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            futures = [pool.submit(one, t, v) for t, v in jobs]
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
            notify(_label(plan, built.target, built.python_version), "done", str(built.path))
    return [built for _, built in results]


@dataclass
class _TargetBuild:
    plan: BuildPlan
    target: str
    pyver: str
    cache: BuildCache
    epoch: int | None
    src_digest: str
    notify: ProgressCallback
    uv: str | None
    runner: Runner

    def build(self, scratch: Path) -> tuple[Path, BuiltPackage]:
        project, pyver = self.plan.project, self.pyver
        platform = python_platform(self.target)
        dest = self.plan.archive_path(self.target, pyver)
        label = _label(self.plan, self.target, pyver)
        self.notify(label, "lock", f"locking dependencies for {platform}, Python {pyver}")
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
            self.notify(label, "cached", "inputs unchanged: reusing the cached archive")
            tmp = _copy_beside(path, dest)
            manifest = parse_manifest(meta)
            return tmp, BuiltPackage(dest, self.target, manifest, cached=True, python_version=pyver)
        self.notify(label, "vendor", f"installing {lock.count('==')} locked wheel(s)")
        vendor_key = cache_key("vendor", lock, platform, pyver)
        tree, _ = self.cache.vendor(
            vendor_key,
            lambda d: install_vendor(
                lock, d, platform, pyver, self.target, uv=self.uv, runner=self.runner
            ),
            scratch,
        )
        wheels = self._check_wheels(read_wheels(tree))
        self.notify(label, "archive", f"writing {dest.name}")
        members = [
            Member("requirements.lock", data=lock.encode("utf-8")),
            *self.plan.sources,
            *tree_members(tree, "vendor", skip_egg_info=False),
        ]
        manifest = self._manifest(member_fingerprint(members), wheels)
        members.append(Member("manifest.json", data=manifest.to_json().encode("utf-8")))
        tmp = write_archive(members, dest, mtime=self.epoch or DEFAULT_MTIME)
        self.cache.store_archive(archive_key, tmp, manifest.to_json())
        return tmp, BuiltPackage(dest, self.target, manifest, python_version=pyver)

    def _check_wheels(self, wheels: list[VendoredWheel]) -> list[VendoredWheel]:
        """Refuse wheels uv installed for another platform or Python (never expected)."""
        problem = vendored_set_problem(wheels, self.target, self.pyver)
        if problem:
            raise BuildError(problem, path=str(self.plan.project.root))
        return wheels

    def _manifest(self, fingerprint: str, wheels: list[VendoredWheel]) -> Manifest:
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
                requires_python=project.requires_python,
                entry_module=project.entry_module,
                python_version=self.pyver,
                abi="cp" + self.pyver.replace(".", ""),
                wheels=wheels,
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


def _label(plan: BuildPlan, target: str, pyver: str) -> str:
    return target if len(plan.python_versions) == 1 else f"{target} py{pyver}"


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
