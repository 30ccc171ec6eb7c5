"""The ``cloacina`` CLI (the real console script) against a real server: the same journey as
the SDK — upload, list, inspect, run with ``raw_data`` and wait, status, events (also
followed live), keys, tenants, server health/status — plus its errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.server.support import RAW_DATA, ServerProcess, bin_path

pytestmark = pytest.mark.xdist_group("server-cli")
WF = "data-pipeline-example"


@pytest.fixture(scope="module")
def cli(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Run ``cloacina ARGS`` against ``server``; the key comes from ``env:`` as users do."""
    config_home = tmp_path_factory.mktemp("cli-home")

    def run(*args: str, key: str | None = None, stdin: str | None = None, script: str = "cloacina"):
        env = {**os.environ, "CLI_TEST_KEY": key or server.key}
        env.pop("CLOACINA_API_KEY", None)
        return subprocess.run(
            [bin_path(script), "--home", str(config_home), "--server", server.url,
             "--api-key", "env:CLI_TEST_KEY", *args],
            capture_output=True, text=True, env=env, input=stdin, timeout=120,
        )  # fmt: skip

    return run


def _json(proc: subprocess.CompletedProcess[str]):  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_package_and_workflow_commands(cli, example_archive: Path) -> None:  # type: ignore[no-untyped-def]
    uploaded = _json(cli("package", "upload", str(example_archive), "-o", "json"))
    assert uploaded["tenant_id"] == "public"
    assert (
        cli("package", "upload", str(example_archive), "-o", "id").stdout.strip()
        == (uploaded["package_id"])
    )
    listed = _json(cli("package", "list", "-o", "json"))
    assert [p["id"] for p in listed] == [uploaded["package_id"]]
    table = cli("package", "list")
    assert table.returncode == 0 and "data-pipeline" in table.stdout
    inspected = _json(cli("package", "inspect", uploaded["package_id"], "-o", "json"))
    assert [n["id"] for n in inspected["task_graph"]][0] == "fetch-data"
    assert cli("workflow", "list", "-o", "id").stdout.split() == [WF]
    shown = cli("workflow", "inspect", WF)
    assert shown.returncode == 0 and "generate-report" in shown.stdout


def test_workflow_pause_and_resume(cli, example_archive: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("package", "upload", str(example_archive)).returncode == 0
    paused = _json(cli("workflow", "pause", WF, "-o", "json"))
    assert (paused["name"], paused["paused"], paused["status"]) == (WF, True, "paused")
    assert [w["paused"] for w in _json(cli("workflow", "list", "-o", "json"))] == [True]
    refused = cli("workflow", "run", WF)
    assert refused.returncode == 1 and "workflow_paused" in refused.stderr
    reader = _json(cli("key", "create", "cli-pause-reader", "--role", "read", "-o", "json"))
    denied = cli("workflow", "resume", WF, key=reader["key"])
    assert denied.returncode == 1 and "insufficient_permissions" in denied.stderr
    resumed = _json(cli("workflow", "resume", WF, "-o", "json"))
    assert (resumed["paused"], resumed["status"]) == (False, "resumed")
    assert cli("workflow", "resume", WF, "-o", "id").stdout.strip() == WF  # idempotent
    assert [w["paused"] for w in _json(cli("workflow", "list", "-o", "json"))] == [False]
    missing = cli("workflow", "pause", "no-such-workflow")
    assert missing.returncode == 1 and "workflow_not_found" in missing.stderr


def test_run_wait_status_and_events(cli, example_archive: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli("package", "upload", str(example_archive))
    ctx_file = tmp_path / "ctx.json"
    ctx_file.write_text(json.dumps({"raw_data": RAW_DATA}))
    done = _json(cli("workflow", "run", WF, "--context", str(ctx_file), "--wait", "-o", "json"))
    assert done["status"] == "Completed"
    assert "Records processed: 2" in done["context"]["report"]
    eid = done["execution_id"]

    table = cli(
        "workflow", "run", WF, "--context", "-", "--wait", stdin=json.dumps({"raw_data": RAW_DATA})
    )
    assert (
        table.returncode == 0
        and "Completed" in table.stdout
        and "Records processed" in table.stdout
    )

    assert _json(cli("execution", "status", eid, "-o", "json"))["status"] == "Completed"
    listed = _json(cli("execution", "list", "--workflow", WF, "-o", "json"))
    assert eid in [e["id"] for e in listed]
    events = _json(cli("execution", "events", eid, "-o", "json"))
    assert events[-1]["event_type"] == "workflow_completed"

    started = cli("workflow", "run", WF, "--context", str(ctx_file), "-o", "id")
    follow = cli("execution", "events", started.stdout.strip(), "--follow")
    assert follow.returncode == 0, follow.stderr
    lines = follow.stdout.splitlines()
    assert lines[-1].endswith("workflow_completed")
    assert sum("task_completed" in line for line in lines) == 4

    failed = cli("workflow", "run", WF, "--wait")  # no data: fetch-data fails
    assert failed.returncode == 1 and "Failed" in failed.stdout


def test_keys_and_tenants(cli, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    created = _json(cli("tenant", "create", "initech", "-o", "json"))
    assert created["name"] == "initech"
    assert "initech" in cli("tenant", "list", "-o", "id").stdout.split()
    key = cli("--tenant", "initech", "key", "create", "bot", "--role", "write", "-o", "id")
    assert key.returncode == 0 and key.stdout.startswith("clk_")
    keys = _json(cli("--tenant", "initech", "key", "list", "-o", "json"))
    assert [k["name"] for k in keys] == ["bot"] and "key" not in keys[0]
    denied = cli("workflow", "list", key=key.stdout.strip())
    assert denied.returncode == 1
    assert "tenant_access_denied" in denied.stderr and "hint:" in denied.stderr
    assert cli("--tenant", "initech", "workflow", "list", key=key.stdout.strip()).returncode == 0
    revoked = _json(cli("--tenant", "initech", "key", "revoke", keys[0]["id"], "-o", "json"))
    assert revoked["status"] == "revoked"
    assert _json(cli("tenant", "delete", "initech", "-o", "json"))["status"] == "removed"


def test_errors_and_server_commands(cli, server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    bad = cli("workflow", "list", key="clk_nope")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ") and "unauthorized" in bad.stderr
    missing = cli("workflow", "run", "no-such-workflow")
    assert missing.returncode == 1 and "workflow_not_found" in missing.stderr
    assert cli("package", "upload", "/nonexistent.cloaca").returncode == 1
    assert cli("server", "health").returncode == 0
    assert cli("server", "health", script="cloacinactl").returncode == 0
    down = subprocess.run(
        [bin_path("cloacina"), "--server", "http://127.0.0.1:9", "server", "health"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert down.returncode == 2
    unreachable = subprocess.run(
        [bin_path("cloacina"), "--server", "http://127.0.0.1:9", "--api-key", "k", "workflow", "list"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    status = subprocess.run(
        [bin_path("cloacina"), "--home", str(server.home), "server", "status", "-o", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(status.stdout)["status"] == "running"


def test_profiles(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        f'[profiles.default]\nserver = "{server.url}"\napi_key = "file:{server.home / "bootstrap-key"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOACINA_")}
    proc = subprocess.run(
        [bin_path("cloacina"), "--home", str(tmp_path), "workflow", "list", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    other = subprocess.run(
        [bin_path("cloacina"), "--home", str(tmp_path), "--profile", "prod", "workflow", "list"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert other.returncode == 1 and "no profile 'prod'" in other.stderr
