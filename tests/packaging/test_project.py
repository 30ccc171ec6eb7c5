from __future__ import annotations

from pathlib import Path

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.project import load_project
from tests.packaging.conftest import MakeProject


def test_reads_project_and_tool_tables(make_project: MakeProject) -> None:
    root = make_project(
        deps='["httpx>=0.25"]',
        extra="""
        [tool.cloaca.tasks.first]
        retries = 2
        """,
    )
    project = load_project(root)
    assert (project.name, project.version, project.description) == (
        "fixture-pkg",
        "0.1.0",
        "fixture",
    )
    assert project.requires_python == ">=3.11"
    assert project.dependencies == ("httpx>=0.25",)
    assert project.entry_module == "fixture_pkg.tasks"
    assert project.source_root == root / "src"
    assert project.task_overrides == {"first": {"retries": 2}}


def test_flat_layout_uses_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "flat"\nversion = "1"\n[tool.cloaca]\nentry_module = "flat"\n'
    )
    assert load_project(tmp_path).source_root == tmp_path.resolve()


def test_no_pyproject(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no pyproject.toml found") as info:
        load_project(tmp_path)
    assert info.value.path == str(tmp_path.resolve())


@pytest.mark.parametrize(
    ("pyproject", "match"),
    [
        ('[project]\nname = "x"\nversion = "1"\n', r"no \[tool.cloaca\] entry_module"),
        ('[project]\nversion = "1"\n[tool.cloaca]\nentry_module = "m"\n', "no \\[project\\] name"),
        (
            '[project]\nname = "x"\n[tool.cloaca]\nentry_module = "m"\n',
            "no static \\[project\\] version",
        ),
        ('[project]\nname = "x"\nversion = "one"\n', "not a PEP 440 version"),
        ('[project\nname = "x"\n', "not valid TOML"),
        (
            '[project]\nname = "x"\nversion = "1"\n[tool.cloaca]\nentry_module = "m"\n'
            "[tool.cloaca.tasks.a]\nretrys = 1\n",
            "unknown key",
        ),
    ],
)
def test_invalid_pyproject(make_project: MakeProject, pyproject: str, match: str) -> None:
    with pytest.raises(BuildError, match=match):
        load_project(make_project(pyproject=pyproject))
