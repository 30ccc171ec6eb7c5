"""binder/ and the GitHub workflow: what mybinder installs (the locked runtime set, graphviz) and
what CI runs (`make test` on Linux and macOS, Python 3.11 and 3.12)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_apt_installs_graphviz_and_postbuild_is_executable() -> None:
    assert "graphviz" in (BINDER / "apt.txt").read_text().split()
    assert os.access(BINDER / "postBuild", os.X_OK)
    assert (BINDER / "runtime.txt").read_text().strip().startswith("python-3.1")


def test_postbuild_export_has_every_runtime_dependency_and_no_dev_tools(tmp_path: Path) -> None:
    line = next(
        ln for ln in (BINDER / "postBuild").read_text().splitlines() if ln.startswith("uv export")
    )
    argv = shlex.split(line)
    argv[argv.index("-o") + 1] = str(tmp_path / "req.txt")
    uv = Path(sys.executable).parent / "uv"
    proc = subprocess.run([str(uv), *argv[1:]], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    pinned = {_name(ln) for ln in (tmp_path / "req.txt").read_text().splitlines() if "==" in ln}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_name(dep) for dep in project["dependencies"]} <= pinned
    assert not {"pytest", "mkdocs", "nbmake"} & pinned


def test_github_workflow_runs_make_test_on_linux_and_macos() -> None:
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["test"]
    assert job["strategy"]["matrix"] == {
        "os": ["ubuntu-latest", "macos-latest"],
        "python-version": ["3.11", "3.12"],
    }
    runs = [step.get("run", "") for step in job["steps"]]
    assert any(r.startswith("make test") for r in runs)
    assert any("apt-get install" in r and "graphviz" in r for r in runs)
    assert any("brew install graphviz" in r for r in runs)
