"""A small real-kernel driver for integration tests (jupyter_client, the venv's ``python3``)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager

import cloaca

AUTO: Any = object()  # default cell id: a fresh one per call


@dataclass
class Reply:
    """Everything one execute request produced on iopub."""

    status: str
    stdout: str = ""
    stderr: str = ""
    error: dict[str, Any] | None = None
    data: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # update_display_data contents
    comm: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> Any:
        """The last line printed, parsed as JSON."""
        return json.loads(self.stdout.strip().splitlines()[-1])


class Kernel:
    """A running kernel; :meth:`run` executes one cell (optionally with a front-end cell id)."""

    def __init__(self, km: KernelManager) -> None:
        self.km = km
        self.kc = km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, cell_id: Any = AUTO, timeout: float = 60) -> Reply:
        """Execute ``code`` as JupyterLab does: ``cellId`` in the request's metadata (a fresh one
        by default, as for a new cell; ``cell_id=None`` sends none, as papermill does)."""
        if cell_id is AUTO:
            cell_id = uuid.uuid4().hex
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        msg = self.kc.session.msg("execute_request", content)
        if cell_id:
            msg["metadata"]["cellId"] = cell_id
        self.kc.shell_channel.send(msg)
        msg_id = msg["header"]["msg_id"]
        reply = Reply("ok")
        while True:
            m = self.kc.get_iopub_msg(timeout=timeout)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            kind, body = m["msg_type"], m["content"]
            if kind == "status" and body["execution_state"] == "idle":
                break
            if kind == "stream":
                setattr(reply, body["name"], getattr(reply, body["name"]) + body["text"])
            elif kind == "error":
                reply.status, reply.error = "error", body
            elif kind in ("display_data", "execute_result"):
                reply.data.append(body["data"])
            elif kind == "update_display_data":
                reply.updates.append(body)
            elif kind.startswith("comm_"):
                reply.comm.append(body)
        self.kc.get_shell_msg(timeout=timeout)
        return reply

    def check(self, code: str, cell_id: Any = AUTO) -> Reply:
        """:meth:`run` and fail on an error."""
        reply = self.run(code, cell_id)
        if reply.status != "ok":
            raise AssertionError("\n".join(reply.error["traceback"]) if reply.error else reply)
        return reply


@contextmanager
def kernel(cwd: Path) -> Iterator[Kernel]:
    """Start a fresh ``python3`` kernel and always shut it down.

    jupyter_client replaces the spec's ``python`` with ``sys.executable``, so the kernel runs
    this venv's interpreter; ``PYTHONPATH`` points at the checkout whose engine the tests import.
    """
    km = KernelManager(kernel_name="python3")
    root = str(Path(cloaca.__file__).parents[1])
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }  # without PYTEST_CURRENT_TEST ipykernel forwards fd-level output, as under JupyterLab
    km.start_kernel(cwd=str(cwd), env=env)
    k = Kernel(km)
    try:
        yield k
    finally:
        k.kc.stop_channels()
        km.shutdown_kernel(now=True)
