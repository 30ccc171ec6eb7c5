"""Every input is checked at the edge, on SQLite and on PostgreSQL: the hostile-input corpus
(:mod:`tests.server.hostile`) gets the 4xx each probe names — never a 5xx — nothing of it is
stored, a rejected upload leaves nothing in ``staging/``, ``packages/`` or the database, and
the server keeps answering reads afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.hostile import TENANT, run_corpus, setup
from tests.server.support import ServerProcess

pytestmark = [pytest.mark.xdist_group("server-edge"), pytest.mark.timeout(600)]
MAX_BODY_MB = 0.5


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def edge_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with a small body cap, on SQLite or on a fresh PostgreSQL database."""
    args = ["--max-body-mb", str(MAX_BODY_MB)]
    if request.param == "postgresql":
        args += ["--database-url", request.getfixturevalue("pg_database")]
    srv = ServerProcess(tmp_path_factory.mktemp(f"edge-{request.param}"), *args).start()
    yield srv
    srv.stop()


def _staged(home: Path) -> set[str]:
    return {p.name for p in (home / "staging").iterdir() if not p.name.startswith(".")}


def test_hostile_corpus_gets_4xx_and_stores_nothing(edge_server: ServerProcess) -> None:
    with edge_server.http() as http:
        setup(http)
        staged_before = _staged(edge_server.home)
        archives_before = sorted((edge_server.home / "packages").iterdir())
        results = run_corpus(http, int(MAX_BODY_MB * 1024 * 1024))
        server_errors = [(p.label, status) for p, status, _ in results if status >= 500]
        assert server_errors == []
        wrong = [
            (p.label, status, body.get("code"), p.expect, p.code)
            for p, status, body in results
            if status != p.expect or (p.code is not None and body.get("code") != p.code)
        ]
        assert wrong == []
        unnamed = [
            (p.label, body.get("error"))
            for p, _, body in results
            if p.mention and p.mention not in str(body.get("error"))
        ]
        assert unnamed == []
        # nothing of the corpus was stored
        for tenant in ("public", TENANT):
            listing = http.get(f"/v1/tenants/{tenant}/executions")
            assert listing.status_code == 200 and listing.json()["total"] == 0
        assert http.get(f"/v1/tenants/{TENANT}/workflows").json()["total"] == 0
        names = {t["name"] for t in http.get("/v1/tenants").json()["items"]}
        assert names == {"public", TENANT}
        keys = http.get("/v1/auth/keys").json()["items"]
        assert [k["name"] for k in keys] == ["bootstrap"]
        # a rejected upload leaves nothing behind
        assert _staged(edge_server.home) == staged_before
        assert sorted((edge_server.home / "packages").iterdir()) == archives_before
        assert not list((edge_server.home / "staging").glob(".incoming-*"))
        assert http.get("/ready").status_code == 200
