"""``cloaca build`` argument handling, output and the error boundary (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloaca.cli.build import main
from tests.packaging.conftest import MakeProject


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOACA_CACHE_DIR", str(tmp_path / "cache"))


def test_dry_run_prints_the_plan_and_writes_nothing(
    make_project: MakeProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project()
    code = main(["build", str(root), "-o", str(tmp_path / "o"), "--target",
                 "linux-x86_64,macos-arm64", "--dry-run"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "would build fixture-pkg 0.1.0" in out
    assert "fixture-pkg-0.1.0-linux-x86_64.cloaca" in out
    assert "fixture-pkg-0.1.0-macos-arm64.cloaca" in out
    assert "second  fixture_pkg.tasks:second  (after first)" in out
    assert not (tmp_path / "o").exists()


def test_build_prints_each_archive(
    make_project: MakeProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project()
    assert main(["build", str(root), "-o", str(tmp_path / "o")]) == 0
    assert "built " in capsys.readouterr().out
    assert main(["build", str(root), "-o", str(tmp_path / "o")]) == 0
    assert "(cached)" in capsys.readouterr().out


def test_errors_print_error_and_hint_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no pyproject.toml found" in err
    assert "\nhint: " in err


def test_verbose_shows_the_steps(
    make_project: MakeProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", str(make_project()), "-o", str(tmp_path / "o"), "-v"]) == 0
    assert "] archive: writing fixture-pkg-0.1.0-" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "build" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["build", "--target"])
    assert info.value.code == 2


def test_dry_run_with_several_pythons(
    make_project: MakeProject, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_project()
    code = main(["build", str(root), "--dry-run", "--target", "linux-x86_64",
                 "--python", "3.11", "--python-version", "3.12"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "for Python 3.11, 3.12" in out
    assert (
        "fixture-pkg-0.1.0-linux-x86_64-py311.cloaca  [x86_64-manylinux_2_28, Python 3.11]" in out
    )
    assert (
        "fixture-pkg-0.1.0-linux-x86_64-py312.cloaca  [x86_64-manylinux_2_28, Python 3.12]" in out
    )
