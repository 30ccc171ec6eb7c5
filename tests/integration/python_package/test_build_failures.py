"""Each failure mode of ``cloaca build``: exit status 1, ``error:`` + hint, and no archive left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging.conftest import write_project

from .conftest import Cli

pytestmark = pytest.mark.slow

NO_TASKS = "def helper(context):\n    return context\n"
DUPLICATE = """
from cloaca import task

@task(id="same")
def one(context):
    return context

@task(id="same")
def two(context):
    return context
"""
UNKNOWN_DEP = """
from cloaca import task

@task(id="load")
def load(context):
    return context

@task(id="save", dependencies=["lod"])
def save(context):
    return context
"""
CYCLE = """
from cloaca import task

@task(id="a", dependencies=["b"])
def a(context):
    return context

@task(id="b", dependencies=["a"])
def b(context):
    return context
"""
LAMBDA_CALLBACK = """
from cloaca import task

@task(id="notify-me", on_failure=lambda task_id, error, context: print(error))
def job(context):
    return context
"""
CLOSURE_CALLBACK = """
from cloaca import task

def factory():
    def alert(task_id, error, context):
        pass
    return alert

alert = factory()

@task(id="job", on_failure=alert)
def job(context):
    return context
"""

CASES = {
    "no-pyproject": ({}, [], "no pyproject.toml found"),
    "no-entry-module": (
        {"pyproject": '[project]\nname = "p"\nversion = "1"\n'},
        [],
        "no [tool.cloaca] entry_module",
    ),
    "entry-module-missing": (
        {"entry": "fixture_pkg.missing"},
        [],
        "entry module 'fixture_pkg.missing' not found",
    ),
    "no-tasks": ({"files": {"fixture_pkg/tasks.py": NO_TASKS}}, [], "no tasks found"),
    "duplicate-id": (
        {"files": {"fixture_pkg/tasks.py": DUPLICATE}},
        [],
        "duplicate task id 'same'",
    ),
    "unknown-dependency": (
        {"files": {"fixture_pkg/tasks.py": UNKNOWN_DEP}},
        [],
        "task 'save' depends on unknown task 'lod'. Did you mean 'load'?",
    ),
    "cycle": ({"files": {"fixture_pkg/tasks.py": CYCLE}}, [], "dependency cycle: a -> b -> a"),
    "lambda-callback": (
        {"files": {"fixture_pkg/tasks.py": LAMBDA_CALLBACK}},
        [],
        "task 'notify-me', option on_failure: is a lambda",
    ),
    "closure-callback": (
        {"files": {"fixture_pkg/tasks.py": CLOSURE_CALLBACK}},
        [],
        "task 'job', option on_failure: 'alert'",
    ),
    "unknown-target": ({}, ["--target", "linux-riscv64"], "unknown target 'linux-riscv64'"),
    "unresolvable-dependency": (
        {"deps": '["cloaca-test-no-such-package-3f9a"]'},
        [],
        "dependency 'cloaca-test-no-such-package-3f9a' cannot be resolved",
    ),
    "sdist-only-dependency": (
        {"deps": '["docopt==0.6.2"]'},
        [],
        "dependency 'docopt' has no binary wheel",
    ),
    "uv-not-installed": ({"deps": '["httpx"]'}, ["ENV:CLOACA_UV=/nonexistent/uv"], "uv not found"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failure(cli: Cli, tmp_path: Path, case: str) -> None:
    options, extra, expected = CASES[case]
    root = tmp_path / "project"
    if case == "no-pyproject":
        root.mkdir()
    else:
        write_project(root, **options)  # type: ignore[arg-type]
    env = dict(e.removeprefix("ENV:").split("=", 1) for e in extra if e.startswith("ENV:"))
    args = [a for a in extra if not a.startswith("ENV:")]
    out = tmp_path / "out"
    proc = cli("build", str(root), "-o", str(out), *args, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: "), proc.stderr
    assert expected in proc.stderr
    assert "\nhint: " in proc.stderr
    assert "Traceback" not in proc.stderr
    leftovers = list(out.iterdir()) if out.exists() else []
    assert leftovers == []
