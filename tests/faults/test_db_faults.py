"""Database faults under a real server: the disk holding the home fills up, PostgreSQL
connections are terminated under load. Every execution answered ``202`` exists and ends in a
terminal state (also after a restart); every other submit got a ``503`` in the error format;
no ``500``; nothing stays ``Running``. Bounded in count and time."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.support import RAW_DATA, Gate, ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
WORKFLOW = "data-pipeline-example"
TERMINAL = ("Completed", "Failed", "Cancelled")


class Server(ServerProcess):
    """A server whose log lives outside its home (the home's disk is what we fill)."""

    def __init__(self, home: Path, log: Path, *args: str) -> None:
        super().__init__(home, *args)
        self.log, self.log_level = log, "info"

    def wait_log(self, text: str, timeout: float) -> None:
        """Block until ``text`` appears in the log."""
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log_tail()}"
            time.sleep(0.1)


def submit(http: httpx.Client, context: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST execute; the status and JSON body."""
    resp = http.post(
        f"/v1/tenants/public/workflows/{WORKFLOW}/execute", json={"context": context}, timeout=90
    )
    return resp.status_code, resp.json()


def wait_terminal(http: httpx.Client, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll until every execution is terminal; its status (fails naming what is left)."""
    deadline = time.monotonic() + timeout
    done: dict[str, str] = {}
    while True:
        for eid in ids:
            if eid in done:
                continue
            resp = http.get(f"/v1/tenants/public/executions/{eid}")
            assert resp.status_code in (200, 503), (eid, resp.status_code, resp.text)
            if resp.status_code == 200 and resp.json()["status"] in TERMINAL:
                done[eid] = resp.json()["status"]
        if len(done) == len(ids):
            return done
        left = {eid: "?" for eid in ids if eid not in done}
        assert time.monotonic() < deadline, f"{len(left)} execution(s) not terminal: {left}"
        time.sleep(0.2)


def check_refusals(answers: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """The ids answered 202; every other answer must be a 503 in the error format."""
    accepted = []
    for status, body in answers:
        if status == 202:
            accepted.append(body["execution_id"])
        else:
            assert status == 503, (status, body)
            assert body["code"] == "storage_unavailable" and "retry" in body["error"], body
    return accepted


# ------------------------------------------------------------------------------ disk full
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 MB tmpfs mounted for the test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("disk-full test needs root to mount a small tmpfs (mount -t tmpfs)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> Path:
    """Write ``path/filler`` until the disk is full; return it."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1 << 9):
            block = b"\0" * chunk
            try:
                while True:
                    fh.write(block)
            except OSError:
                continue
    return filler


def test_disk_full_every_accepted_execution_survives(
    small_disk: Path, tmp_path: Path, example_archive: Path, gate: Gate
) -> None:
    home = small_disk / "home"
    srv = Server(home, tmp_path / "server.log").start()
    try:
        srv.client().upload_workflow(example_archive.read_bytes())
        pad = "p" * 200_000
        with srv.http() as http:
            # in flight before the disk fills: fetch-data waits at the gate
            before = [submit(http, {"api_url": gate.url, "pad": pad}) for _ in range(5)]
            assert [status for status, _ in before] == [202] * 5, before
            gate.wait_hits(1)
            filler = fill(small_disk)
            with ThreadPoolExecutor(6) as pool:
                during = list(
                    pool.map(lambda _: submit(http, {"raw_data": RAW_DATA, "pad": pad}), range(6))
                )
            gate.open()  # the waiting tasks now finish and write into a full disk
            srv.wait_log("runner database write failed", timeout=60)
            filler.unlink()
            accepted = check_refusals(before + during)
            assert len(accepted) >= 5  # the ones in flight before the disk filled
            statuses = wait_terminal(http, accepted, timeout=180)
            assert set(statuses.values()) == {"Completed"}, statuses
        srv.wait_log("runner database writes resumed", timeout=30)
        assert "changes lost" not in srv.log.read_text()
        srv.stop()
        srv = Server(home, tmp_path / "server.log").start()
        with srv.http() as http:
            assert wait_terminal(http, accepted, timeout=120) == statuses
    finally:
        srv.stop()


# ------------------------------------------------------------------ lost PostgreSQL connections
def terminate_backends(url: str, stop: threading.Event, kills: list[int]) -> None:
    """Terminate every other connection to the database of ``url`` every 0.2 s until ``stop``."""
    import psycopg

    dbname = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(0.2):
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
            kills.append(sum(1 for (ok,) in rows if ok))


@pytest.mark.postgres
def test_terminated_connections_lose_no_accepted_execution(
    pg_database: str, tmp_path: Path, example_archive: Path
) -> None:
    home = tmp_path / "home"
    srv = Server(home, tmp_path / "server.log", "--database-url", pg_database).start()
    stop, kills = threading.Event(), []
    answers: list[tuple[int, dict[str, Any]]] = []
    try:
        srv.client().upload_workflow(example_archive.read_bytes())
        killer = threading.Thread(target=terminate_backends, args=(pg_database, stop, kills))

        def client(n: int) -> None:
            with srv.http() as http:
                for i in range(12):  # 4 clients x 12 submits, while connections are killed
                    answers.append(submit(http, {"raw_data": RAW_DATA, "client": n, "i": i}))

        killer.start()
        try:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(client, range(4)))
        finally:
            stop.set()
            killer.join(10)
        assert sum(kills) > 0, "no connection was terminated"
        accepted = check_refusals(answers)
        assert accepted, "every submit was refused"
        with srv.http() as http:
            statuses = wait_terminal(http, accepted, timeout=180)
            assert set(statuses.values()) == {"Completed"}, statuses
            listing = http.get("/v1/tenants/public/executions", params={"limit": 1000})
            assert listing.status_code == 200, listing.text
            listed = {item["id"] for item in listing.json()["items"]}
            assert set(accepted) <= listed
        assert "changes lost" not in srv.log.read_text()
        srv.stop()
        srv = Server(home, tmp_path / "server.log", "--database-url", pg_database).start()
        with srv.http() as http:
            assert wait_terminal(http, accepted, timeout=60) == statuses
    finally:
        stop.set()
        srv.stop()
