"""Shared server-test support (imported by the conftests of ``tests/server`` and
``tests/integration/server``): the example package built once per session with the real
``cloaca build``, real server processes (``cloacina-server``) on a free port with a temporary
home, the real ``cloacina-client`` SDK, a PostgreSQL database per use (or one skip reason), and
a gated local HTTP server that makes the example's ``fetch-data`` task wait on demand.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "features" / "python-workflow"
PG_URL = os.environ.get("CLOACA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
RAW_DATA = [
    {"id": 1, "name": "alpha", "value": 10.0},
    {"id": 2, "name": "beta", "value": 32.5},
    {"id": 3, "name": "broken", "value": "not a number"},
]
START_TIMEOUT = 180.0


def bin_path(name: str) -> str:
    """A console script of this environment."""
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="session")
def example_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project built for this host by the real ``cloaca build``."""
    out = tmp_path_factory.mktemp("example-dist")
    env = {
        **os.environ,
        "SOURCE_DATE_EPOCH": "1700000000",
        "CLOACA_CACHE_DIR": str(tmp_path_factory.mktemp("build-cache")),
    }
    proc = subprocess.run(
        [bin_path("cloaca"), "build", str(EXAMPLE), "-o", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (archive,) = sorted(out.glob("*.cloaca"))
    return archive


class ServerProcess:
    """A real ``cloacina-server`` process serving from ``home``."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = home / "test-server.log"
        self.log_level = "warning"

    def start(self) -> ServerProcess:
        """Start and wait until it answers; ``url`` and ``key`` are set then."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "ab")  # noqa: SIM115 — owned by the child
        self.proc = subprocess.Popen(
            [bin_path("cloacina-server"), "--bind", "127.0.0.1:0", "--home", str(self.home),
             "--log-level", self.log_level, *self.args],
            stdout=log, stderr=log, env=self.env,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_tail()
            try:
                info = json.loads((self.home / "server.json").read_text())
                if info["pid"] == self.proc.pid:
                    self.url = info["url"]
                    httpx.get(self.url + "/health", timeout=5).raise_for_status()
                    return self
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not start:\n{self.log_tail()}")

    @property
    def key(self) -> str:
        """The bootstrap (admin) key."""
        return (self.home / "bootstrap-key").read_text().strip()

    def log_tail(self) -> str:
        """The end of the server's log."""
        try:
            return self.log.read_text()[-6000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the process and wait for it; return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def client(self, key: str | None = None, tenant: str = "public") -> Any:
        """A ``cloacina_client.Client`` for this server."""
        from cloacina_client import Client

        return Client(self.url, api_key=key or self.key, tenant=tenant)

    def http(self, key: str | None = None) -> httpx.Client:
        """A raw httpx client with the key (for what the SDK does not expose)."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=30
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One SQLite-backed server shared by the tests of a module."""
    srv = ServerProcess(tmp_path_factory.mktemp("server-home")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def uploaded(server: ServerProcess, example_archive: Path) -> str:
    """The example uploaded to ``server``'s public tenant; returns the workflow name."""
    server.client().upload_workflow(example_archive.read_bytes())
    return "data-pipeline-example"


def wait_status(client: Any, eid: str, timeout: float = 60.0, tenant: str | None = None) -> Any:
    """Poll ``get_execution`` until the execution ends; return the last detail."""
    deadline = time.monotonic() + timeout
    while True:
        detail = client.get_execution(eid, tenant=tenant)
        if detail.status in ("Completed", "Failed", "Cancelled"):
            return detail
        assert time.monotonic() < deadline, f"execution {eid} still {detail.status}"
        time.sleep(0.05)


# ---------------------------------------------------------------- PostgreSQL
_pg_state: dict[str, str | None] = {}


def _pg_reason() -> str | None:
    if "reason" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except Exception as exc:
            _pg_state["reason"] = f"no PostgreSQL server at {PG_URL} ({type(exc).__name__})"
    return _pg_state["reason"]


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database (dropped afterwards); skips without a server."""
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"cloaca_srv_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------- gated data source
class Gate:
    """A local HTTP server answering ``RAW_DATA`` once its gate opens (``open()``)."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.hits = 0
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.hits += 1
                gate.opened.wait(120)
                body = json.dumps(RAW_DATA).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_hits(self, n: int, timeout: float = 60.0) -> None:
        """Block until ``n`` requests arrived."""
        deadline = time.monotonic() + timeout
        while self.hits < n:
            assert time.monotonic() < deadline, f"only {self.hits} request(s) reached the gate"
            time.sleep(0.05)

    def open(self) -> None:
        """Let every waiting and future request through."""
        self.opened.set()

    def close(self) -> None:
        """Stop serving."""
        self.opened.set()
        self.httpd.shutdown()


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A gated data source for ``fetch-data`` (pass ``{"api_url": gate.url}``)."""
    g = Gate()
    yield g
    g.close()
