"""Tenant delete and re-create under traffic (real server, real clients on loopback, SQLite
and PostgreSQL): over 20 rounds, clients keep submitting and reading while the tenant is
deleted and created again; the re-created tenant must never see an execution of the deleted
one, no request may answer 5xx, and after a restart the last tenant's own executions are still
there. On PostgreSQL every deleted generation's schema must be gone."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from tests.server.archives import base_archive
from tests.server.support import ServerProcess, pg_database  # noqa: F401 — fixture

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("faults-tenants"), pytest.mark.timeout(900)]
ROUNDS = 20
CLIENTS = 3
TENANT = "gen"
WF = "base-pkg"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("pg_database")
    return url


class Traffic:
    """Clients submitting executions to and reading the tenant until stopped (bounded)."""

    def __init__(self, url: str, keys: list[str]) -> None:
        self.url = url
        self.keys = keys
        self.statuses: Counter[int] = Counter()
        self.accepted = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(k,)) for k in keys]

    def _run(self, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        base = f"/v1/tenants/{TENANT}"
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as http:
            for i in range(400):  # bounded even if never stopped
                if self.stop.is_set():
                    return
                if i % 3 == 2:
                    response = http.get(base + "/executions", params={"limit": 5})
                else:
                    response = http.post(base + f"/workflows/{WF}/execute", json={"context": {}})
                with self._lock:
                    self.statuses[response.status_code] += 1
                    self.accepted += response.status_code == 202

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)


def _visible(http: httpx.Client) -> int:
    response = http.get(f"/v1/tenants/{TENANT}/executions")
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def _wait_done(http: httpx.Client, eid: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: str = http.get(f"/v1/tenants/{TENANT}/executions/{eid}").json()["status"]
        if status in ("Completed", "Failed", "Cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"execution {eid} did not finish")


def _create(http: httpx.Client) -> str:
    """Create the tenant with its package; return a write key of the tenant."""
    assert http.post("/v1/tenants", json={"name": TENANT}).status_code == 201
    key = http.post(f"/v1/tenants/{TENANT}/keys", json={"name": "w", "role": "write"})
    assert key.status_code == 201, key.text
    files = {"file": ("base.cloaca", base_archive())}
    assert http.post(f"/v1/tenants/{TENANT}/workflows", files=files).status_code == 201
    return str(key.json()["key"])


@pytest.fixture
def home_server(db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = [] if db == "sqlite" else ["--database-url", db]
    srv = ServerProcess(tmp_path_factory.mktemp("faults-tenants"), *args).start()
    yield srv
    srv.stop()


def test_recreated_tenant_starts_empty_under_traffic(home_server: ServerProcess, db: str) -> None:
    srv = home_server
    leaks: list[tuple[int, int]] = []
    statuses: Counter[int] = Counter()
    admin_statuses: Counter[int] = Counter()
    with srv.http() as admin:
        key = _create(admin)
        own: list[str] = []
        for round_no in range(ROUNDS):
            with Traffic(srv.url, [key, srv.key, key][:CLIENTS]) as traffic:
                deadline = time.monotonic() + 30
                while traffic.accepted < 3 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert traffic.accepted >= 3, traffic.statuses
                removed = admin.delete(f"/v1/tenants/{TENANT}")
                admin_statuses[removed.status_code] += 1
                assert removed.status_code == 200, removed.text
                assert admin.post("/v1/tenants", json={"name": TENANT}).status_code == 201
                seen_during = _visible(admin)  # clients are still sending
            seen_after = _visible(admin)
            statuses.update(traffic.statuses)
            if seen_during or seen_after:
                leaks.append((round_no, max(seen_during, seen_after)))
            # the new generation works: its own executions run and are visible
            key = admin.post(f"/v1/tenants/{TENANT}/keys", json={"name": "w", "role": "write"})
            key = key.json()["key"]
            files = {"file": ("base.cloaca", base_archive())}
            assert admin.post(f"/v1/tenants/{TENANT}/workflows", files=files).status_code == 201
            own = []
            for _ in range(2):
                response = admin.post(f"/v1/tenants/{TENANT}/workflows/{WF}/execute", json={})
                assert response.status_code == 202, response.text
                own.append(response.json()["execution_id"])
            assert [_wait_done(admin, eid) for eid in own] == ["Completed", "Completed"]
            assert _visible(admin) == 2
    assert leaks == [], f"rounds leaking executions into the re-created tenant: {leaks}"
    assert not [s for s in statuses if s >= 500], statuses
    assert statuses[202] >= 3 * ROUNDS  # the traffic really ran
    # a restart keeps the last generation's own executions (and nothing else)
    srv.stop()
    srv.start()
    with srv.http() as admin:
        assert _visible(admin) == 2
        for eid in own:
            assert (
                admin.get(f"/v1/tenants/{TENANT}/executions/{eid}").json()["status"] == "Completed"
            )
    if db != "sqlite":
        with psycopg.connect(db) as conn:
            schemas = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cloacina_gen_%'"
            ).fetchall()
        assert len(schemas) == 1, schemas  # only the live generation's schema is left
    else:
        files = sorted(p.name for p in (srv.home / "tenants").glob("gen_*.db"))
        assert len(files) == 1, files
