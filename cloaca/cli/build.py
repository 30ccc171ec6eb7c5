"""``cloaca build``: package a project into ``.cloaca`` archives (the ``cloaca`` console script).

Parses arguments, calls :func:`cloaca.packaging.build_package`, and renders progress (rich, on a
terminal) and results. One error boundary turns a :class:`~cloaca.errors.CloacaError` into
``error: ...`` plus a hint on stderr and exit status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from cloaca.errors import BuildError, CloacaError
from cloaca.packaging import TARGETS, build_package, plan_build
from cloaca.packaging.builder import BuildPlan, ProgressCallback

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def make_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``cloaca`` command."""
    parser = argparse.ArgumentParser(
        prog="cloaca", description="Build cloaca workflow packages (.cloaca archives)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    build = sub.add_parser(
        "build",
        help="package a project into one .cloaca archive per target",
        description="Lock, vendor and package the project in PATH (default: the current "
        "directory) into {name}-{version}-{target}.cloaca archives.",
    )
    build.add_argument("path", nargs="?", default=".", help="project directory (default: .)")
    build.add_argument(
        "-o", "--out-dir", metavar="DIR", help="output directory (default: PATH/dist)"
    )
    build.add_argument(
        "--target",
        action="append",
        metavar="T",
        help=f"target platform, repeatable ({', '.join(TARGETS)}; default: this host)",
    )
    build.add_argument(
        "--python",
        "--python-version",
        dest="python",
        action="append",
        metavar="X.Y",
        help="Python to build for, repeatable: one archive per version (default: [tool.cloaca] "
        "python, else this interpreter's)",
    )
    build.add_argument(
        "--dry-run", action="store_true", help="show what would be built, build nothing"
    )
    build.add_argument("--no-cache", action="store_true", help="ignore and skip the build cache")
    build.add_argument(
        "-v", "--verbose", action="store_true", help="show every step and uv command"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cloaca``; return the exit status (the console script exits with it)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command != "build":
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="  %(message)s", stream=sys.stderr)
    targets = [t.strip() for arg in args.target or () for t in arg.split(",") if t.strip()]
    pythons = [v.strip() for arg in args.python or () for v in arg.split(",") if v.strip()]
    try:
        if args.dry_run:
            plan = plan_build(args.path, args.out_dir, targets, python_versions=pythons)
            _print_plan(plan, sys.stdout)
            return EXIT_OK
        with _progress(args.verbose) as progress:
            built = build_package(
                args.path,
                args.out_dir,
                targets,
                python_versions=pythons,
                progress=progress,
                use_cache=not args.no_cache,
            )
    except CloacaError as exc:
        _print_error(exc, args)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted; no archive was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    for pkg in built:
        note = " (cached)" if pkg.cached else ""
        size = pkg.path.stat().st_size / 1e6
        info = f"{len(pkg.manifest.tasks)} tasks, Python {pkg.python_version}, {size:.1f} MB"
        print(f"built {_rel(pkg.path)} [{info}]{note}")
    return EXIT_OK


def _print_error(exc: CloacaError, args: argparse.Namespace) -> None:
    print(f"error: {exc}", file=sys.stderr)
    if isinstance(exc, BuildError):
        hint = "nothing was written. Fix the project and run `cloaca build` again"
        if not args.verbose:
            hint += " (add -v to see each step)"
        print(f"hint: {hint}; `cloaca build --dry-run` checks a project quickly.", file=sys.stderr)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _print_plan(plan: BuildPlan, out: TextIO) -> None:
    project = plan.project
    pythons = ", ".join(plan.python_versions)
    print(f"would build {project.name} {project.version} for Python {pythons}", file=out)
    print(f"  from {project.root} (entry module {project.entry_module})", file=out)
    for target, pyver in plan.jobs():
        path = _rel(plan.archive_path(target, pyver))
        print(f"  -> {path}  [{TARGETS[target]}, Python {pyver}]", file=out)
    deps = ", ".join(project.dependencies) or "none"
    print(f"dependencies: {deps}", file=out)
    files = [m.path for m in plan.sources if not m.is_dir]
    print(f"sources: {len(files)} file(s) under src/", file=out)
    print(f"tasks ({len(plan.tasks)}):", file=out)
    for task in plan.tasks:
        after = f"  (after {', '.join(task.dependencies)})" if task.dependencies else ""
        print(f"  {task.id}  {task.function}{after}", file=out)


@contextmanager
def _progress(verbose: bool) -> Iterator[ProgressCallback | None]:
    if sys.stderr.isatty():
        with _rich_progress() as callback:
            yield callback
        return
    if not verbose:
        yield None
        return
    lock = threading.Lock()

    def plain(target: str, stage: str, message: str) -> None:
        with lock:
            print(f"[{target}] {stage}: {message}", file=sys.stderr, flush=True)

    yield plain


@contextmanager
def _rich_progress() -> Iterator[ProgressCallback]:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    stages = {"lock": 1, "vendor": 2, "cached": 4, "archive": 3, "done": 4}
    console = Console(stderr=True)
    lock = threading.Lock()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[target]}[/bold] {task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        rows: dict[str, object] = {}

        def update(target: str, stage: str, message: str) -> None:
            with lock:
                if target not in rows:
                    rows[target] = bar.add_task(message, total=4, target=target)
                row = rows[target]
                bar.update(row, description=message, completed=stages.get(stage, 0))  # type: ignore[arg-type]

        yield update


if __name__ == "__main__":  # `python -m cloaca.cli.build`
    sys.exit(main())
