"""Building notebook tasks for the Pythons a server runs: a real ``cloacina-server`` on
127.0.0.1 given a second interpreter (``--python X.Y=PATH``) says so in ``GET /health``;
``%cloaca_build --server URL`` in a real kernel then vendors for each of them (the manifests
say which), and an archive of the session built for the second Python (what
``%cloaca_run --server`` builds when the server cannot run the kernel's) runs there on it."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloaca.registry.interpreters import Interpreter
from cloaca_nb.server_package import KERNEL_PYTHON, build_python
from tests.notebook.kernel import kernel
from tests.pythons import HOST, other_python_or_skip
from tests.server.support import ServerProcess, wait_status

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.timeout(400),
    pytest.mark.xdist_group("notebook-server-pythons"),
]

CELL = """
import sys
from cloaca import task

@task(id="where")
def where(context):
    context["python"] = f"{sys.version_info.major}.{sys.version_info.minor}"
    return context
"""


@pytest.fixture(scope="module")
def other() -> Interpreter:
    return other_python_or_skip()


@pytest.fixture(scope="module")
def two_pythons(
    other: Interpreter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server running package tasks on its own Python and on ``other``."""
    home = tmp_path_factory.mktemp("two-pythons-home")
    srv = ServerProcess(home, "--python", f"{other.short}={other.executable}").start()
    yield srv
    srv.stop()


def manifest_python(archive: Path) -> str:
    """``python.python_version`` of an archive's manifest."""
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("manifest.json"))
        handle = tar.extractfile(member)
        assert handle is not None
        version: str = json.load(handle)["python"]["python_version"]
        return version


def test_build_python_prefers_the_kernels_when_the_server_runs_it() -> None:
    assert build_python([]) == KERNEL_PYTHON  # an upstream server says nothing
    assert build_python(["3.99", KERNEL_PYTHON]) == KERNEL_PYTHON
    assert build_python(["3.98", "3.99"]) == "3.98"  # else the server's own


def test_build_for_the_servers_pythons(
    two_pythons: ServerProcess, other: Interpreter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    health = httpx.get(two_pythons.url + "/health", timeout=10).json()
    assert health == {"status": "ok", "pythons": [HOST, other.short]}
    monkeypatch.setenv("CLOACA_CACHE_DIR", str(tmp_path / "cache"))
    out, cross = tmp_path / "dist", "cross-tasks"
    with kernel(tmp_path) as k:
        k.check("%load_ext cloaca_nb")
        k.check(CELL, "c-where")
        built = k.check(
            "import json\n"
            f"built = %cloaca_build --server {two_pythons.url} -o {out} --name nb-where\n"
            "print(json.dumps([[str(b.path), b.python_version] for b in built]))"
        ).json()
        plain = k.check(
            f"plain = %cloaca_build -o {tmp_path / 'plain'} --name nb-where\n"
            "print(json.dumps([b.python_version for b in plain]))"
        ).json()
        down = k.run("%cloaca_build --server http://127.0.0.1:9")
        # what %cloaca_run --server builds for a server that does not run the kernel's Python
        path = k.check(
            "from cloaca_nb.hooks import current\n"
            "from cloaca_nb.server_package import session_package\n"
            f"pkg = session_package(current().session, {cross!r}, {other.short!r})\n"
            "print(json.dumps(str(pkg.path)))"
        ).json()

    # one archive per server Python, each vendored for it (the manifest says so)
    assert sorted(v for _, v in built) == sorted([HOST, other.short])
    assert {Path(p).name.split("-py")[-1] for p, _ in built} == {
        v.replace(".", "") + ".cloaca" for v in (HOST, other.short)
    }
    assert {manifest_python(Path(p)) for p, _ in built} == {HOST, other.short}
    assert plain == [HOST]  # no --server, no --python: the kernel's, as before
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith("UsageError: ") and "no server reachable at http://127.0.0.1:9" in line
    # the session built for the other Python loads on the server and runs on that interpreter
    assert manifest_python(Path(path)) == other.short
    client = two_pythons.client()
    client.upload_workflow(Path(path).read_bytes())
    eid = client.execute_workflow(cross, {}).execution_id
    detail = wait_status(client, eid, timeout=120)
    assert detail.status == "Completed", two_pythons.log_tail()
    assert detail.additional_properties["context"]["python"] == other.short
