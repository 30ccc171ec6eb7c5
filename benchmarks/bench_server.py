"""Server throughput: executions per second of the example's 4-task workflow through the REST
API, with 1, 4 and 16 concurrent clients (the real ``cloacina-client`` SDK), and the latency
from ``POST .../execute`` to seeing ``Completed`` (p50, p99).

A real server process (``cloacina-server``) serves each backend: SQLite under a temporary home,
and PostgreSQL (a fresh database, dropped afterwards) when one answers at
``$CLOACA_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``). Tasks run
in the package's warm worker processes, as in production. Clients poll every 10 ms. Run
``python -m benchmarks.bench_server`` (or ``make bench``).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "features" / "python-workflow"
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("CLOACA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CLIENTS = (1, 4, 16)
SECONDS = 4.0
POLL = 0.01
CONTEXT = {"raw_data": [{"id": i, "name": f"r{i}", "value": float(i)} for i in range(20)]}


def build(out: Path) -> Path:
    """The example built by ``cloaca build``."""
    subprocess.run(
        [str(BIN / "cloaca"), "build", str(EXAMPLE), "-o", str(out)], check=True,
        capture_output=True,
    )  # fmt: skip
    return next(out.glob("*.cloaca"))


@contextmanager
def server(home: Path, *args: str) -> Iterator[tuple[str, str]]:
    """A running server: yields (url, admin key)."""
    proc = subprocess.Popen(
        [str(BIN / "cloacina-server"), "--bind", "127.0.0.1:0", "--home", str(home),
         "--log-level", "error", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                info = json.loads((home / "server.json").read_text())
                if info["pid"] == proc.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        yield info["url"], (home / "bootstrap-key").read_text().strip()
    finally:
        proc.terminate()
        proc.wait(60)


def run_client(url: str, key: str, stop: float, latencies: list[float]) -> None:
    """Execute and wait, again and again, until ``stop`` (a perf_counter time)."""
    from cloacina_client import Client

    client = Client(url, api_key=key)
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        eid = client.execute_workflow("data-pipeline-example", CONTEXT).execution_id
        while client.get_execution(eid).status not in ("Completed", "Failed"):
            time.sleep(POLL)
        latencies.append(time.perf_counter() - t0)


def measure(url: str, key: str, clients: int) -> dict[str, float]:
    """Executions/s and latency percentiles with ``clients`` concurrent clients."""
    run_client(url, key, time.perf_counter() + 0.5, [])  # warm the workers
    per_client: list[list[float]] = [[] for _ in range(clients)]
    start = time.perf_counter()
    stop = start + SECONDS
    threads = [
        threading.Thread(target=run_client, args=(url, key, stop, lat)) for lat in per_client
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    lat = sorted(x for client in per_client for x in client)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return {
        "clients": clients,
        "executions": len(lat),
        "per_second": len(lat) / elapsed,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": p99 * 1000,
    }


def backend(name: str, archive: Path, *args: str) -> list[dict[str, Any]]:
    """Measure every client count on one backend."""
    from cloacina_client import Client

    rows = []
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), *args) as (url, key):
        Client(url, api_key=key).upload_workflow(archive.read_bytes())
        for clients in CLIENTS:
            rows.append({"backend": name, **measure(url, key, clients)})
    return rows


@contextmanager
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database URL, or None when no server answers."""
    try:
        import psycopg

        name = f"cloaca_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception:
        yield None
        return
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    """Run the benchmark and print the table."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = build(Path(tmp))
        rows = backend("SQLite", archive)
        with pg_database() as pg:
            if pg is None:
                print(f"(PostgreSQL skipped: nothing answers at {PG_URL})")
            else:
                rows += backend("PostgreSQL", archive, "--database-url", pg)
    print(
        "Server: the example's 4-task workflow through the REST API (execute, then poll every "
        f"{POLL * 1000:.0f} ms until Completed), {SECONDS:.0f} s per row\n"
    )
    print(f"{'backend':<11} {'clients':>7} {'executions':>10} {'exec/s':>8}", end="")
    print(f" {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['backend']:<11} {r['clients']:>7} {r['executions']:>10} {r['per_second']:>8.1f} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f}"
        )
    if path := os.environ.get("CLOACA_BENCH_JSON"):
        Path(path).write_text(json.dumps({"server": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
