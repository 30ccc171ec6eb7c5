"""Cross-package dependencies on the server, through the real SDK: a package whose task
depends on ``"base-pkg::produce"`` is accepted before ``base-pkg`` exists, shows a failed build
naming the missing package and task, refuses to execute (409), is built when ``base-pkg``
arrives, runs both packages' tasks, fails again when ``base-pkg`` goes, and is built on a
restart whatever the reload order."""

from __future__ import annotations

from pathlib import Path

import pytest
from cloacina_client import CloacinaApiError

from tests.server.archives import base_archive, user_archive
from tests.server.support import ServerProcess, wait_status

WF = "user-pkg"


def _run(srv: ServerProcess) -> dict[str, object]:
    client = srv.client()
    eid = client.execute_workflow(WF, {"factor": 10}).execution_id
    detail = wait_status(client, eid)
    assert detail.status == "Completed", detail.additional_properties
    tasks = client.get_execution_tasks("public", eid).tasks
    assert [t.task_name for t in tasks] == ["produce", "total", "report"]
    context: dict[str, object] = detail.additional_properties["context"]
    return context


def test_dependent_uploaded_first_builds_when_its_dependency_arrives(tmp_path: Path) -> None:
    home = tmp_path / "home"
    srv = ServerProcess(home).start()
    try:
        client = srv.client()
        client.upload_workflow(user_archive())  # accepted: base-pkg may come later
        detail = client.get_workflow(WF)
        assert detail.build_status == "failed"
        assert "'base-pkg::produce'" in detail.build_error
        assert "package 'base-pkg' is not installed" in detail.build_error
        assert "task 'total'" in detail.build_error
        with pytest.raises(CloacinaApiError) as err:
            client.execute_workflow(WF, {})
        assert (err.value.status, err.value.code) == (409, "workflow_not_built")
        assert "base-pkg" in str(err.value)

        client.upload_workflow(base_archive())
        detail = client.get_workflow(WF)
        assert (detail.build_status, detail.build_error) == ("success", None)
        assert [n.dependencies for n in detail.task_graph] == [["base-pkg::produce"], ["total"]]
        context = _run(srv)
        assert context == {"factor": 10, "numbers": [1, 2, 3], "total": 60, "report": "total=60"}

        client.delete_workflow("base-pkg", "1.0.0")
        assert client.get_workflow(WF).build_status == "failed"
        client.upload_workflow(base_archive())
        assert client.get_workflow(WF).build_status == "success"
    finally:
        srv.stop()
    again = ServerProcess(home).start()  # user-pkg was stored first, base-pkg (again) after
    try:
        assert again.client().get_workflow(WF).build_status == "success"
        assert _run(again)["report"] == "total=60"
    finally:
        again.stop()


def test_unknown_task_of_an_installed_package_is_a_failed_build(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "home").start()
    try:
        client = srv.client()
        client.upload_workflow(base_archive())
        client.upload_workflow(user_archive("base-pkg::prodcue"))
        detail = client.get_workflow(WF)
        assert detail.build_status == "failed"
        assert "'prodcue'" in detail.build_error and "produce" in detail.build_error
    finally:
        srv.stop()
