"""Start-up errors through the real CLIs: a home that is a file, lies under a file, sits in
``/proc`` or cannot be written ends in one line naming the path and the fix, exit status 2 —
no traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.server.support import bin_path

pytestmark = pytest.mark.xdist_group("server-startup")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args, "--bind", "127.0.0.1:0"], capture_output=True, text=True, timeout=60
    )


def _one_line_error(proc: subprocess.CompletedProcess[str], path: Path, fix: str) -> None:
    assert proc.returncode == 2, proc.stderr
    message = proc.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert str(path) in message and fix in message, message


@pytest.mark.parametrize("cli", ["cloacina-server", "cloacina server start"])
def test_home_that_is_a_file(tmp_path: Path, cli: str) -> None:
    home = tmp_path / "home"
    home.write_text("not a directory")
    _one_line_error(_run(*_argv(cli), "--home", str(home)), home, "--home")
    assert home.read_text() == "not a directory"


def test_home_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    home = tmp_path / "file" / "home"
    _one_line_error(_run(bin_path("cloacina-server"), "--home", str(home)), home, "--home")


@pytest.mark.parametrize("cli", ["cloacina-server", "cloacina server start"])
def test_home_under_proc(cli: str) -> None:
    home = Path("/proc/cloaca-home")
    _one_line_error(_run(*_argv(cli), "--home", str(home)), home, "--home")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_home_not_writable(tmp_path: Path) -> None:
    home = tmp_path / "locked"
    home.mkdir()
    home.chmod(0o500)
    try:
        _one_line_error(_run(bin_path("cloacina-server"), "--home", str(home)), home, "--home")
    finally:
        home.chmod(0o700)


def _argv(cli: str) -> list[str]:
    first, *rest = cli.split()
    return [bin_path(first), *rest]
