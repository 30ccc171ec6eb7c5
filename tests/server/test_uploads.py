"""Bad input never corrupts state: malformed and hostile uploads are refused with 400 (413 when
too large, checked while streaming) and store nothing; a package whose workflow is running is
not deleted without ``force``."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.support import RAW_DATA, Gate, ServerProcess, wait_status

pytestmark = pytest.mark.xdist_group("server-uploads")
WF = "data-pipeline-example"
LIMIT_MB = 5


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server accepting uploads up to ``LIMIT_MB``."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("upload-home"), "--max-upload-mb", str(LIMIT_MB)
    ).start()
    yield srv
    srv.stop()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(raw.getvalue(), mtime=0)


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _rewrite(archive: Path, change: Callable[[str, bytes], bytes]) -> bytes:
    """The example archive with each member's bytes passed through ``change``."""
    members = []
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            fh = tar.extractfile(info)
            data = change(info.name, fh.read()) if fh else None
            members.append((info, data))
    return _tar(members)


def _hostile(example: Path) -> dict[str, bytes]:
    with tarfile.open(example) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]

    def tamper(name: str, data: bytes) -> bytes:
        return data + b"\nimport os\n" if name.endswith("data_pipeline/tasks.py") else data

    def typo(name: str, data: bytes) -> bytes:
        return json.dumps({**manifest, "taks": []}).encode() if name == "manifest.json" else data

    return {
        "random bytes": b"\x00\x01not an archive at all" * 10,
        "gzip but not tar": gzip.compress(b"hello world" * 100),
        "no manifest": _tar([_file("src/x.py", b"print(1)\n")]),
        "path traversal": _tar(
            [_file("../../escape.txt", b"pwned"), _file("manifest.json", b"{}")]
        ),
        "absolute path": _tar([_file("/tmp/cloaca-abs.txt", b"pwned")]),
        "escaping symlink": _tar([_link("src/passwd", "/etc/passwd")]),
        "hard link out": _tar([_link("src/h", "../../etc/passwd", tarfile.LNKTYPE)]),
        "tampered source (fingerprint)": _rewrite(example, tamper),
        "manifest typo": _rewrite(example, typo),
    }


def _snapshot(srv: ServerProcess) -> tuple[list[str], list[str]]:
    packages = sorted(p.name for p in (srv.home / "packages").iterdir())
    with srv.http() as http:
        items = http.get("/v1/tenants/public/workflows").json()["items"]
    return packages, [i["id"] for i in items]


def test_hostile_uploads_are_rejected_and_store_nothing(
    small_server: ServerProcess, example_archive: Path
) -> None:
    before = _snapshot(small_server)
    client = small_server.client()
    for label, data in _hostile(example_archive).items():
        with small_server.http() as http:
            response = http.post(
                "/v1/tenants/public/workflows", files={"file": ("evil.cloaca", data)}
            )
        assert response.status_code == 400, (label, response.text)
        body = response.json()
        assert body["code"] == "upload_failed", (label, body)
        assert body["error"], label
        assert response.headers["x-request-id"]
    assert _snapshot(small_server) == before
    assert not Path("/tmp/cloaca-abs.txt").exists()
    assert not (small_server.home.parent / "escape.txt").exists()
    assert client.list_workflows().total == len(before[1])


def test_malformed_requests_are_400(small_server: ServerProcess) -> None:
    before = _snapshot(small_server)
    with small_server.http() as http:
        cases = {
            "empty file": http.post(
                "/v1/tenants/public/workflows", files={"file": ("p.cloaca", b"")}
            ),
            "no file": http.post("/v1/tenants/public/workflows", data={"name": "x"}),
            "not multipart": http.post("/v1/tenants/public/workflows", json={"file": "x"}),
            "broken multipart": http.post(
                "/v1/tenants/public/workflows",
                content=b"--zzz\r\nContent-Disposition: form-data; name=",
                headers={"Content-Type": "multipart/form-data; boundary=zzz"},
            ),
        }
    for label, response in cases.items():
        assert response.status_code == 400, (label, response.text)
        assert response.json()["code"] == "invalid_request", label
    assert _snapshot(small_server) == before


def test_oversized_upload_is_refused_while_streaming(small_server: ServerProcess) -> None:
    before = _snapshot(small_server)
    big = b"\x1f\x8b" + b"\0" * (LIMIT_MB * 1024 * 1024 + 200_000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold mid-stream
        body = b"--b\r\nContent-Disposition: form-data; name=file; filename=x\r\n\r\n" + big
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]
        yield b"\r\n--b--\r\n"

    with small_server.http() as http:
        try:
            response = http.post(
                "/v1/tenants/public/workflows",
                content=chunks(),
                headers={"Content-Type": "multipart/form-data; boundary=b"},
            )
            assert response.status_code == 413
            assert response.json()["code"] == "payload_too_large"
        except httpx.TransportError:
            pass  # the server may close the connection before reading everything
        sized = http.post("/v1/tenants/public/workflows", files={"file": ("x", big)})
        assert sized.status_code == 413 and sized.json()["code"] == "payload_too_large"
    assert _snapshot(small_server) == before
    assert not list((small_server.home / "packages").glob(".upload-*"))


def test_delete_refuses_running_workflow_unless_forced(
    small_server: ServerProcess, example_archive: Path, gate: Gate
) -> None:
    client = small_server.client()
    package_id = client.upload_workflow(example_archive.read_bytes()).package_id
    eid = client.execute_workflow(WF, {"api_url": gate.url}).execution_id
    gate.wait_hits(1)
    with small_server.http() as http:
        refused = http.delete(f"/v1/tenants/public/workflows/{WF}/1.0.0")
        assert refused.status_code == 409 and refused.json()["code"] == "workflow_running"
        assert package_id in [i.id for i in client.list_workflows().items]
        forced = http.delete(f"/v1/tenants/public/workflows/{WF}/1.0.0", params={"force": "true"})
        assert forced.status_code == 200 and forced.json()["status"] == "deleted"
    gate.open()
    assert wait_status(client, eid).status in ("Completed", "Failed")
    assert package_id not in [i.id for i in client.list_workflows().items]
    assert not list((small_server.home / "packages").glob("*.cloaca"))
    # deleting again is a no-op; uploading again works
    assert client.delete_workflow(WF, "1.0.0").status == "deleted"
    assert client.upload_workflow(example_archive.read_bytes()).package_id == package_id
    eid = client.execute_workflow(WF, {"raw_data": RAW_DATA}).execution_id
    assert wait_status(client, eid).status == "Completed"
