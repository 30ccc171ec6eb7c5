"""Code that runs inside the kernel of an isolated run (imported by the generated notebook).

:func:`start` collects the ``@task`` functions the following cells declare; :func:`finish` runs
them on the engine, shows the summary in the notebook, and writes the result as JSON for the
parent kernel to read back (:func:`cloaca_nb.result.result_from_dict`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloaca import TaskSpec, Workflow
from cloaca.task import add_task_listener, remove_task_listener
from cloaca_nb.result import NotebookResult, result_to_dict

_specs: dict[str, TaskSpec] = {}


def _collect(spec: TaskSpec) -> None:
    if spec.source is None or spec.source.module == "__main__":
        _specs[spec.id] = spec


def start() -> None:
    """Start collecting task declarations."""
    _specs.clear()
    add_task_listener(_collect)


def finish(
    context: Mapping[str, Any],
    options: Mapping[str, Any],
    result_path: str,
    task_ids: list[str],
    workflow_name: str = "notebook",
) -> NotebookResult:
    """Run the collected tasks, write the result JSON to ``result_path`` and return it."""
    remove_task_listener(_collect)
    workflow = Workflow(workflow_name, {t: _specs[t] for t in task_ids})
    result = workflow.run(dict(context), **dict(options))
    filenames: dict[str, int] = {}
    try:
        from IPython import get_ipython

        shell = get_ipython()
        filenames = dict(getattr(getattr(shell, "compile", None), "_filename_map", {}) or {})
    except ImportError:  # pragma: no cover - always run in IPython
        pass
    payload = {"result": result_to_dict(result), "filenames": filenames}
    Path(result_path).write_text(json.dumps(payload), encoding="utf-8")
    return NotebookResult(result)
