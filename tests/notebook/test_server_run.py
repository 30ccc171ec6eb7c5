"""``%cloaca_run --server`` against a real ``cloacina-server`` on 127.0.0.1: same result as the
in-kernel run, live widget updates, no rebuild/re-upload when nothing changed, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from IPython.core.error import UsageError

from tests.notebook.conftest import RunCell
from tests.notebook.kernel import kernel
from tests.server.support import ServerProcess

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.timeout(240),
    pytest.mark.xdist_group("notebook-server"),
]

CELL_LOAD = """
from cloaca import task

@task(id="load")
def load(context):
    context["rows"] = list(range(context.get("n", 3)))
    return context
"""
CELL_WORK = """
@task(id="flaky", dependencies=["load"], retry_attempts=3, retry_delay_ms=50)
def flaky(context):
    from pathlib import Path
    marker = Path(context["marker"])
    attempt = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempt))
    if attempt < 2:
        raise RuntimeError(f"attempt {attempt} fails")
    context["total"] = sum(context["rows"])
    return context

@task(id="bad", dependencies=["load"], retry_attempts=1)
def bad(context):
    raise ValueError("bad input: " + str(len(context["rows"])))

@task(id="report", dependencies=["flaky", "bad"])
def report(context):
    context["report"] = "never"
    return context
"""
SUMMARY = """
import json
def _summary(res):
    return {
        "status": res.status,
        "context": {k: v for k, v in res.final_context.to_dict().items() if k != "marker"},
        "tasks": {t: [r.status, r.attempts, r.skip_reason] for t, r in res.tasks.items()},
        "errors": {t: [r.error.error_type, r.error.message, r.error.traceback]
                   for t, r in res.tasks.items() if r.error is not None},
        "server": None if res.server is None else res.server.__dict__,
    }
"""


@pytest.fixture(autouse=True)
def build_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build cache (and so an archive directory) of this test's own."""
    monkeypatch.setenv("CLOACA_CACHE_DIR", str(tmp_path / "cache"))


def packages(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    """The server's package versions of ``name``."""
    with server.http() as http:
        items = http.get("/v1/tenants/public/workflows").raise_for_status().json()["items"]
    return [i for i in items if i["package_name"] == name]


def test_server_run_matches_in_kernel_and_skips_unchanged_work(
    server: ServerProcess, tmp_path: Path
) -> None:
    remote = f"--server {server.url} --api-key {server.key} --name parity"
    with kernel(tmp_path) as k:
        k.check("%load_ext cloaca_nb")
        k.check(CELL_LOAD, "c-load")
        k.check(CELL_WORK, "c-work")
        k.check(SUMMARY, "c-summary")
        k.check(f"local = %cloaca_run -p n=4 -p marker={tmp_path / 'm-local'} --no-widget")
        k.check("%cloaca_dag", "c-dag")  # the live widget: it follows every run of the session
        run = k.run(f"remote = %cloaca_run {remote} -p n=4 -p marker={tmp_path / 'm-remote'}")
        assert run.status == "ok", run.error
        state = k.check(
            "from cloaca_nb.hooks import current\n"
            "widget = list(current().widgets)[-1]\n"
            "print(json.dumps({'local': _summary(local), 'remote': _summary(remote),"
            " 'nodes': {t: v['status'] for t, v in widget.nodes.items()},"
            " 'done': [widget.done, widget.total]}))"
        ).json()
        after_first = packages(server, "parity")
        again = k.check(f"again = %cloaca_run {remote} -p n=4 -p marker={tmp_path / 'm-again'}")
        again_state = k.check("print(json.dumps(_summary(again)))").json()
        after_again = packages(server, "parity")
        # an edited cell: rebuilt, uploaded as a new version, and the new code runs there
        k.check(CELL_WORK.replace("    return context", '    context["edited"] = True\n    return context', 1), "c-work")  # fmt: skip
        edited = k.check(
            f"edited = %cloaca_run {remote} -p n=4 -p marker={tmp_path / 'm-edit'} --no-widget\n"
            "print(json.dumps(_summary(edited)))"
        ).json()
        down = k.run("%cloaca_run --server http://127.0.0.1:9 --no-widget")

    local, first = state["local"], state["remote"]
    # the same result object as in-kernel: context, statuses, attempts, skip reasons, errors
    assert local["status"] == first["status"] == "Failed"
    assert first["context"] == local["context"] == {"n": 4, "rows": [0, 1, 2, 3], "total": 6}
    assert first["tasks"] == local["tasks"]
    assert first["tasks"]["flaky"] == ["Completed", 2, None]
    assert first["tasks"]["report"][0] == "Skipped" and first["tasks"]["bad"][:2] == ["Failed", 1]
    (etype, message, tb), (ltype, lmessage, _) = first["errors"]["bad"], local["errors"]["bad"]
    assert (etype, message) == (ltype, lmessage) == ("ValueError", "bad input: 4")
    assert "raise ValueError" in tb and "tasks.py" in tb
    assert first["server"]["built"] and first["server"]["uploaded"]
    # the widget was recoloured live, from the server's events
    assert state["nodes"] == {
        "load": "succeeded", "flaky": "succeeded", "bad": "failed", "report": "skipped"
    }  # fmt: skip
    assert state["done"] == [4, 4]
    updates = [m["data"]["state"] for m in run.comm if m.get("data", {}).get("method") == "update"]
    running = [u for u in updates if any(v.get("status") == "running" for v in u.get("nodes", {}).values())]  # fmt: skip
    assert running, "no live 'running' update reached the front end"
    # unchanged: neither rebuilt nor uploaded, and the server's packages are as they were
    assert again.status == "ok"
    assert again_state["tasks"] == first["tasks"] and again_state["context"] == first["context"]
    assert not again_state["server"]["built"] and not again_state["server"]["uploaded"]
    assert after_again == after_first and len(after_first) == 1
    # edited: a new version, and the server ran the new code
    assert edited["server"]["built"] and edited["server"]["uploaded"]
    assert edited["server"]["version"] != first["server"]["version"]
    assert edited["context"]["edited"] is True
    assert {p["version"] for p in packages(server, "parity")} == {
        first["server"]["version"], edited["server"]["version"]
    }  # fmt: skip
    # no server: one line (IPython shows a UsageError without a traceback), naming the URL and
    # how to start one
    (line,) = down.stderr.strip().splitlines()
    assert line.startswith("UsageError: ") and "no server reachable at http://127.0.0.1:9" in line
    assert "cloacina server start" in line and down.error is None


def test_profiles_and_the_local_server_home(
    server: ServerProcess, cell: RunCell, ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell(CELL_LOAD, "c-load")
    home = tmp_path / "client-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[profiles.dev]\nserver = "{server.url}"\n'
        f'api_key = "file:{server.home / "bootstrap-key"}"\n'
    )
    monkeypatch.setenv("CLOACINA_HOME", str(home))
    result = ip.run_line_magic("cloaca_run", "--server dev --name profiled -p n=2 --no-widget")
    assert result.status == "Completed" and result.final_context["rows"] == [0, 1]
    assert result.server.server == server.url and result.server.uploaded
    # no profile, no URL: the server running from CLOACINA_HOME, with its bootstrap key
    monkeypatch.setenv("CLOACINA_HOME", str(server.home))
    again = ip.run_line_magic("cloaca_run", "--server --name profiled -p n=2 --no-widget")
    assert again.server.server == server.url and not again.server.uploaded
    assert not again.server.built  # same session, same cells: the kernel's last archive


def test_errors_are_one_line(
    server: ServerProcess, cell: RunCell, ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cell(CELL_LOAD, "c-load")
    monkeypatch.setenv("CLOACINA_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text('[profiles.prod]\nserver = "http://127.0.0.1:9"\n')
    with pytest.raises(UsageError, match=r"no profile 'staging' in .*config\.toml.*known profiles: prod"):  # fmt: skip
        ip.run_line_magic("cloaca_run", "--server staging --no-widget")
    with pytest.raises(UsageError) as bad_key:
        ip.run_line_magic("cloaca_run", f"--server {server.url} --api-key nope --no-widget")
    assert "HTTP 401" in str(bad_key.value) and "--api-key" in str(bad_key.value)
    assert "\n" not in str(bad_key.value)
    monkeypatch.setenv("NB_KEY", "")
    with pytest.raises(UsageError, match="environment variable NB_KEY is not set"):
        ip.run_line_magic("cloaca_run", f"--server {server.url} --api-key env:NB_KEY")
    with pytest.raises(UsageError, match="no server reachable at http://127.0.0.1:9"):
        ip.run_line_magic("cloaca_run", "--server prod --no-widget")
    with pytest.raises(UsageError, match="--server runs the whole workflow"):
        ip.run_line_magic("cloaca_run", f"--server {server.url} --only load")
    # nothing was uploaded by the failed attempts
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.key}"}) as h:
        names = {i["package_name"] for i in h.get("/v1/tenants/public/workflows").json()["items"]}
    assert "notebook-tasks" not in names


def test_result_json_of_a_server_run_round_trips(
    server: ServerProcess, cell: RunCell, ip: Any
) -> None:
    from cloaca_nb.result import result_from_dict, result_to_dict

    cell(CELL_LOAD, "c-load")
    res = ip.run_line_magic(
        "cloaca_run", f"--server {server.url} --api-key {server.key} --name rt --no-widget"
    )
    back = result_from_dict(json.loads(json.dumps(result_to_dict(res.result))))
    assert back.final_context.to_dict() == res.final_context.to_dict() == {"rows": [0, 1, 2]}
    assert back.execution_id == res.server.execution_id
    assert "server " + server.url in repr(res)
