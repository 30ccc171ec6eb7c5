"""A hostile-input corpus for a running server: bad names, NUL characters and lone surrogates
in every kind of field, numbers out of range, oversized and deeply nested bodies, packages whose
manifest no column can hold, a package rejected after unpacking. Each probe names the answer it
must get; :func:`run_corpus` sends them all and returns what came back (the measurement
script and the tests share it)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.registry.conftest import build_archive, manifest_for, package_entries, python_files
from tests.server.archives import BASE_SOURCE, base_archive

TENANT = "edge_t"
WF = "base-pkg"


@dataclass(frozen=True)
class Probe:
    """One hostile request and the status (and optional error code) it must be answered."""

    label: str
    method: str
    path: str
    expect: int
    code: str | None = None
    json_body: Any = None
    raw: bytes | None = None
    files: dict[str, Any] | None = None
    mention: str | None = None  # a word the error message must hold (the field's name)


def package(name: str = "odd-pkg", tasks: list[dict[str, Any]] | None = None, **pkg: Any) -> bytes:
    """A package archive whose ``package`` manifest fields are overridden by ``pkg``."""
    files = python_files({"pkg/__init__.py": "", "pkg/tasks.py": BASE_SOURCE})
    manifest = manifest_for(
        name, files, tasks or [{"id": "produce", "function": "pkg.tasks:produce"}]
    )
    manifest["package"].update(pkg)
    return build_archive(package_entries(files, manifest, dirs=("src", "vendor")))


def cycle_package() -> bytes:
    """A valid archive whose two tasks depend on each other (rejected after unpacking)."""
    return package(
        "cycle-pkg",
        [
            {"id": "a", "function": "pkg.tasks:produce", "dependencies": ["b"]},
            {"id": "b", "function": "pkg.tasks:produce", "dependencies": ["a"]},
        ],
    )


def _raw_json(text: str) -> bytes:
    return text.encode("utf-8")


def probes(max_body_bytes: int) -> list[Probe]:
    """The corpus (the server must run with ``--max-body-mb`` giving ``max_body_bytes``)."""
    t = f"/v1/tenants/{TENANT}"
    ex = f"/v1/tenants/public/workflows/{WF}/execute"
    deep = "[" * 20000 + "]" * 20000
    return [
        # tenant names
        Probe("tenant name with trailing newline", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "evil\n"}),
        Probe("tenant information_schema", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "information_schema"}),
        Probe("tenant pg_catalog", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "pg_catalog"}),
        Probe("tenant PUBLIC", "POST", "/v1/tenants", 400, "invalid_request", {"name": "PUBLIC"}),
        Probe("tenant name non-ASCII", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "t\u00e9nant"}),
        Probe("tenant name with a dash", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "a-b"}),
        Probe("tenant name 64 chars", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "a" * 64}),
        Probe("tenant name NUL", "POST", "/v1/tenants", 400, "invalid_request", {"name": "a\x00b"}),
        Probe("tenant name differs in case only", "POST", "/v1/tenants", 409, "tenant_exists",
              {"name": TENANT.upper()}),
        Probe("tenant description NUL", "POST", "/v1/tenants", 400, "invalid_request",
              {"name": "desc_nul", "description": "a\x00b"}, mention="description"),
        Probe("tenant description lone surrogate", "POST", "/v1/tenants", 400, "invalid_request",
              raw=_raw_json('{"name": "desc_sur", "description": "\\ud800"}'),
              mention="description"),
        Probe("delete unknown tenant", "DELETE", "/v1/tenants/nope_nope", 404, "tenant_not_found"),
        Probe("delete public", "DELETE", "/v1/tenants/public", 400, "invalid_request"),
        Probe("tenant path with NUL", "GET", "/v1/tenants/a%00b/workflows", 400, "invalid_request"),
        # numbers
        Probe("huge offset", "GET", f"{t}/executions?offset=99999999999999999999999", 422,
              "invalid_parameter", mention="offset"),
        Probe("text offset", "GET", f"{t}/executions?offset=abc", 422, "invalid_parameter",
              mention="offset"),
        Probe("huge limit", "GET", f"{t}/executions?limit=99999999999999999999999", 400,
              "invalid_pagination"),
        Probe("negative offset", "GET", f"{t}/executions?offset=-1", 400, "invalid_pagination"),
        Probe("float limit", "GET", f"{t}/executions?limit=1.5", 422, "invalid_parameter",
              mention="limit"),
        # path and query text
        Probe("workflow name NUL", "GET", "/v1/tenants/public/workflows/a%00b", 400,
              "invalid_request", mention="name"),
        Probe("execute workflow name NUL", "POST", "/v1/tenants/public/workflows/a%00b/execute",
              400, "invalid_request", {}, mention="name"),
        Probe("delete version NUL", "DELETE", "/v1/tenants/public/workflows/a/1%00", 400,
              "invalid_request", mention="version"),
        Probe("workflow filter NUL", "GET", f"{t}/executions?workflow=a%00b", 400,
              "invalid_request", mention="workflow"),
        Probe("status filter NUL", "GET", f"{t}/executions?status=%00", 400, "invalid_request"),
        Probe("workflow name 5000 chars", "GET", "/v1/tenants/public/workflows/" + "a" * 5000,
              400, "invalid_request"),
        Probe("execution id NUL", "GET", f"{t}/executions/%00", 400, "invalid_request"),
        Probe("execution id unknown", "GET", f"{t}/executions/{uuid.uuid4()}", 404,
              "execution_not_found"),
        # contexts
        Probe("context lone surrogate", "POST", ex, 400, "invalid_request",
              raw=_raw_json('{"context": {"x": "\\ud800"}}'), mention="context"),
        Probe("context lone surrogate key", "POST", ex, 400, "invalid_request",
              raw=_raw_json('{"context": {"\\udfff": 1}}'), mention="context"),
        Probe("context NUL value", "POST", ex, 400, "invalid_request",
              {"context": {"x": ["ok", "a\x00"]}}, mention="x[1]"),
        Probe("context NUL key", "POST", ex, 400, "invalid_request", {"context": {"a\x00": 1}}),
        Probe("context nested 20000 deep", "POST", ex, 400, "invalid_request",
              raw=_raw_json('{"context": {"x": ' + deep + "}}")),
        Probe("context nested 100 deep", "POST", ex, 400, "invalid_request",
              raw=_raw_json('{"context": {"x": ' + "[" * 100 + "]" * 100 + "}}")),
        Probe("context not an object", "POST", ex, 400, "invalid_request", {"context": [1, 2]}),
        Probe("malformed JSON", "POST", ex, 400, "invalid_request", raw=b'{"context": '),
        Probe("execute body over the cap", "POST", ex, 413, "payload_too_large",
              raw=_raw_json(json.dumps({"context": {"x": "y" * (max_body_bytes + 10)}}))),
        # keys
        Probe("key name NUL", "POST", "/v1/auth/keys", 400, "invalid_request",
              {"name": "k\x00"}, mention="name"),
        Probe("key name lone surrogate", "POST", f"{t}/keys", 400, "invalid_request",
              raw=_raw_json('{"name": "\\ud800"}'), mention="name"),
        Probe("key name 300 chars", "POST", "/v1/auth/keys", 400, "invalid_request",
              {"name": "k" * 300}),
        Probe("key role unknown", "POST", "/v1/auth/keys", 400, "invalid_request",
              {"name": "k", "role": "root"}),
        Probe("revoke key id NUL", "DELETE", "/v1/auth/keys/%00", 400, "invalid_request"),
        # packages
        Probe("package version 65 chars", "POST", f"{t}/workflows", 400, "upload_failed",
              files={"file": ("p.cloaca", package(version="1." + "0" * 63))}, mention="version"),
        Probe("package version NUL", "POST", f"{t}/workflows", 400, "upload_failed",
              files={"file": ("p.cloaca", package(version="1.0\x00"))}, mention="version"),
        Probe("package description NUL", "POST", f"{t}/workflows", 400, "upload_failed",
              files={"file": ("p.cloaca", package(description="x\x00y"))},
              mention="description"),
        Probe("package name 300 chars", "POST", f"{t}/workflows", 400, "upload_failed",
              files={"file": ("p.cloaca", package(name="p" * 300))}),
        Probe("package with a dependency cycle", "POST", f"{t}/workflows", 400, "upload_failed",
              files={"file": ("p.cloaca", cycle_package())}),
        Probe("not an archive", "POST", f"{t}/workflows", 400, "upload_failed",
              files={"file": ("p.cloaca", b"hello")}),
    ]  # fmt: skip


def setup(client: httpx.Client) -> None:
    """The tenant and workflow the corpus aims at (idempotent)."""
    response = client.post("/v1/tenants", json={"name": TENANT})
    assert response.status_code in (201, 409), response.text
    files = {"file": ("base.cloaca", base_archive())}
    response = client.post("/v1/tenants/public/workflows", files=files)
    assert response.status_code == 201, response.text


def send(client: httpx.Client, probe: Probe) -> httpx.Response:
    """Send one probe."""
    headers = {"content-type": "application/json"} if probe.raw is not None else None
    return client.request(
        probe.method,
        probe.path,
        json=probe.json_body if probe.raw is None and probe.files is None else None,
        content=probe.raw,
        files=probe.files,
        headers=headers,
    )


def run_corpus(
    client: httpx.Client, max_body_bytes: int
) -> list[tuple[Probe, int, dict[str, Any]]]:
    """Send every probe; return (probe, status, JSON body or {})."""
    out = []
    for probe in probes(max_body_bytes):
        response = send(client, probe)
        try:
            body = response.json()
        except ValueError:
            body = {}
        out.append((probe, response.status_code, body if isinstance(body, dict) else {}))
    return out
