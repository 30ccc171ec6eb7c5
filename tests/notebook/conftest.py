"""Fixtures for the notebook kit: a real IPython shell (globalipapp) with the kit loaded."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.server.support import server  # noqa: F401 — fixture (the --server tests)

RunCell = Callable[..., Any]
AUTO: Any = object()  # `cell(source)`: a fresh cell id; `cell(source, None)`: no id (papermill)


@pytest.fixture
def ip() -> Iterator[Any]:
    """The global test shell with ``%load_ext cloaca_nb``; unloaded and cleaned afterwards."""
    from IPython.testing.globalipapp import get_ipython

    shell = get_ipython()
    shell.run_line_magic("load_ext", "cloaca_nb")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "cloaca_nb")
        for name in [k for k in shell.user_ns if not k.startswith("_")]:
            if name not in ("In", "Out", "get_ipython", "exit", "quit"):
                shell.user_ns.pop(name, None)


@pytest.fixture
def cell(ip: Any) -> RunCell:
    """Run dedented source as a notebook cell; ``cell_id`` identifies the cell like JupyterLab
    (default: a fresh id, as for a new cell; ``None``: no id, as papermill and nbconvert)."""

    def run(source: str, cell_id: Any = AUTO, check: bool = True) -> Any:
        if cell_id is AUTO:  # a new cell, with an id of its own as JupyterLab sends
            cell_id = uuid.uuid4().hex
        result = ip.run_cell(textwrap.dedent(source), store_history=True, cell_id=cell_id)
        if check and not result.success:
            raise AssertionError(f"cell failed: {result.error_before_exec or result.error_in_exec}")
        return result

    return run
