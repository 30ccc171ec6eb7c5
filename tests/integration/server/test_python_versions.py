"""Python versions end to end, with the real ``cloaca build`` (real uv, PyPI wheels), real
``cloacina-server`` processes and a second CPython: a package whose vendored set was built for
another Python is refused at upload with a 400 naming both Pythons and the fix; built for both,
each archive runs where it fits; a server given the second interpreter (``--python X.Y=PATH``)
runs packages built for either. The package vendors ``markupsafe``, whose ``_speedups`` module
is compiled for one CPython ABI, so the wrong interpreter could not import it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cloaca.packaging.targets import host_target
from cloaca.registry.interpreters import Interpreter
from tests.pythons import HOST, other_python_or_skip
from tests.server.support import ServerProcess, bin_path, wait_status

pytestmark = [pytest.mark.xdist_group("server-python-versions"), pytest.mark.timeout(600)]

PYPROJECT = """\
[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["markupsafe>=2.1"]

[tool.cloaca]
entry_module = "where_pkg.tasks"
"""
TASKS = """\
import sys

from cloaca import task


@task(id="where")
def where(context):
    from markupsafe import _speedups, escape  # compiled for one CPython ABI

    context["python"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    context["escaped"] = str(escape("<b>")) if _speedups else ""
    return context
"""


def build(root: Path, name: str, out: Path, *pythons: str) -> list[Path]:
    """Write the project ``name`` under ``root`` and ``cloaca build`` it for ``pythons``."""
    (root / "src" / "where_pkg").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    (root / "src" / "where_pkg" / "__init__.py").write_text("")
    (root / "src" / "where_pkg" / "tasks.py").write_text(TASKS)
    argv = [bin_path("cloaca"), "build", str(root), "-o", str(out)]
    for version in pythons:
        argv += ["--python", version]
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return sorted(out.glob(f"{name}-*.cloaca"))


@pytest.fixture(scope="module")
def other() -> Interpreter:
    return other_python_or_skip()


@pytest.fixture(scope="module")
def archives(other: Interpreter, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``both-<X.Y>``: one project built for both Pythons; ``host-only``: another for this one."""
    tmp = tmp_path_factory.mktemp("python-versions")
    out = tmp / "dist"
    both = build(tmp / "both", "where-both", out, HOST, other.short)
    target = host_target()
    suffix = {v: f"-{target}-py{v.replace('.', '')}.cloaca" for v in (HOST, other.short)}
    found = {f"both-{v}": next(p for p in both if p.name.endswith(s)) for v, s in suffix.items()}
    (found["host-only"],) = build(tmp / "host", "where-host", out, HOST)
    assert found["host-only"].name == f"where-host-0.1.0-{target}.cloaca"  # one Python: no suffix
    return found


def run(srv: ServerProcess, workflow: str) -> dict[str, object]:
    client = srv.client()
    eid = client.execute_workflow(workflow, {}).execution_id
    detail = wait_status(client, eid, timeout=120)
    assert detail.status == "Completed", (detail.additional_properties, srv.log_tail())
    context: dict[str, object] = detail.additional_properties["context"]
    return context


def test_built_for_another_python_is_refused_at_upload(
    server: ServerProcess, archives: dict[str, Path], other: Interpreter
) -> None:
    with server.http() as http:
        files = {"file": ("pkg.cloaca", archives[f"both-{other.short}"].read_bytes())}
        response = http.post("/v1/tenants/public/workflows", files=files)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "upload_failed"
    message = body["error"]
    assert f"package 'where-both' was built for Python {other.short}" in message
    assert f"this host runs Python {HOST}" in message
    assert "markupsafe" in message  # the wheel that cannot run here
    assert f"`cloaca build --target {host_target()} --python {HOST}`" in message
    assert f"--python {other.short}=/path/to/python{other.short}" in message


def test_built_for_both_runs_on_the_matching_one(
    server: ServerProcess, archives: dict[str, Path]
) -> None:
    server.client().upload_workflow(archives[f"both-{HOST}"].read_bytes())
    assert run(server, "where-both") == {"python": HOST, "escaped": "&lt;b&gt;"}


def test_a_server_with_both_interpreters_runs_packages_built_for_each(
    archives: dict[str, Path], other: Interpreter, tmp_path: Path
) -> None:
    srv = ServerProcess(tmp_path / "home", "--python", f"{other.short}={other.executable}").start()
    try:
        client = srv.client()
        client.upload_workflow(archives[f"both-{other.short}"].read_bytes())
        client.upload_workflow(archives["host-only"].read_bytes())
        assert run(srv, "where-both")["python"] == other.short
        assert run(srv, "where-host")["python"] == HOST
    finally:
        srv.stop()
    # a restart reloads the stored packages onto the same interpreters
    again = ServerProcess(tmp_path / "home", "--python", f"{other.short}={other.executable}")
    again.start()
    try:
        assert run(again, "where-both")["python"] == other.short
    finally:
        again.stop()


def test_a_server_refuses_an_interpreter_that_is_not_the_version_given(
    other: Interpreter, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [bin_path("cloacina-server"), "--bind", "127.0.0.1:0", "--home", str(tmp_path),
         "--python", f"3.99={other.executable}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"that interpreter is Python {other.short}, not 3.99" in proc.stderr
    assert not (tmp_path / "server.json").exists()  # it never served
