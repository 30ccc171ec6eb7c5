"""Shared builds of the reference example, made once per session with the real ``cloaca`` CLI.

Builds use a session cache directory (uv's own download cache is the user's, so wheels are
fetched once per machine) and a fixed ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "features" / "python-workflow"
EPOCH = "1700000000"

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _cloaca_command() -> list[str]:
    script = Path(sys.executable).parent / "cloaca"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cloaca.cli.build"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cloaca-cache")


@pytest.fixture(scope="session")
def cli(cache_dir: Path) -> Cli:
    """Run ``cloaca ARGS...`` in a subprocess; ``env=`` adds variables."""

    def run(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None):
        full_env = {**os.environ, "CLOACA_CACHE_DIR": str(cache_dir), "SOURCE_DATE_EPOCH": EPOCH}
        full_env.pop("CLOACA_UV", None)
        full_env.update(env or {})
        return subprocess.run(
            [*_cloaca_command(), *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd or REPO,
            timeout=240,
        )

    return run


def _build(cli: Cli, out: Path, *targets: str) -> list[Path]:
    args = ["build", str(EXAMPLE), "-o", str(out)]
    for target in targets:
        args += ["--target", target]
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    return sorted(out.glob("*.cloaca"))


@pytest.fixture(scope="session")
def host_archive(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example built for the host target (no --target)."""
    (archive,) = _build(cli, tmp_path_factory.mktemp("host"))
    return archive


@pytest.fixture(scope="session")
def two_target_archives(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example built with ``--target linux-x86_64 --target macos-arm64``."""
    targets = ("linux-x86_64", "macos-arm64")
    paths = _build(cli, tmp_path_factory.mktemp("two"), *targets)
    assert len(paths) == 2
    return {t: next(p for p in paths if p.name.endswith(f"-{t}.cloaca")) for t in targets}
