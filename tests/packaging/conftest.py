"""Fixture projects for the packaging tests, generated in tmp dirs (one per failure mode)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
description = "fixture"
requires-python = ">=3.11"
dependencies = {deps}

[tool.cloaca]
entry_module = "{entry}"
{extra}
"""

TASKS = '''\
from cloaca import task


@task(id="first")
def first(context):
    """First task."""
    return context


@task(id="second", dependencies=["first"], retry_attempts=3, timeout_seconds=2.5)
async def second(context):
    return context
'''

MakeProject = Callable[..., Path]


def write_project(
    root: Path,
    *,
    name: str = "fixture-pkg",
    deps: str = "[]",
    entry: str = "fixture_pkg.tasks",
    extra: str = "",
    files: dict[str, str] | None = None,
    pyproject: str | None = None,
) -> Path:
    """Write a small src-layout project under ``root`` and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    text = (
        pyproject
        if pyproject is not None
        else PYPROJECT.format(name=name, deps=deps, entry=entry, extra=textwrap.dedent(extra))
    )
    (root / "pyproject.toml").write_text(text)
    sources = {"fixture_pkg/__init__.py": "", "fixture_pkg/tasks.py": TASKS}
    sources.update(files or {})
    for rel, content in sources.items():
        path = root / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Return ``make(**options)`` writing a fixture project in a fresh tmp dir."""
    counter = iter(range(1000))

    def make(**options: object) -> Path:
        return write_project(tmp_path / f"project{next(counter)}", **options)  # type: ignore[arg-type]

    return make
