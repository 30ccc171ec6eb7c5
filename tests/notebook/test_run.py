"""``%cloaca_run`` in-kernel: context options, sub-DAG selection, result object, failures."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from cloaca.errors import TaskExecutionError, TaskSelectionError
from cloaca_nb.errors import NotebookError
from cloaca_nb.magics import parse_params
from cloaca_nb.result import NotebookResult, result_from_dict, result_to_dict
from tests.notebook.conftest import RunCell

PIPELINE = """
from cloaca import task

@task(id="load")
def load(context):
    context["rows"] = list(range(context.get("n", 3)))
    return context

@task(id="total", dependencies=["load"])
def total(context):
    context["total"] = sum(context["rows"])
    return context

@task(id="report", dependencies=["total"])
async def report(context):
    import asyncio
    await asyncio.sleep(0)
    context["report"] = f"{context.get('label', 'sum')}={context['total']}"
    return context
"""


def test_run_returns_the_result_object(cell: RunCell, ip: Any) -> None:
    cell(PIPELINE, "p")
    result = ip.run_line_magic("cloaca_run", "-p n=5 -p label=total --out res --no-widget")
    assert isinstance(result, NotebookResult) and ip.user_ns["res"] is result
    assert result.status == "Completed"
    assert result.final_context.to_dict() == {
        "n": 5, "label": "total", "rows": [0, 1, 2, 3, 4], "total": 10, "report": "total=10",
    }  # fmt: skip
    assert result.statuses == {"load": "Completed", "total": "Completed", "report": "Completed"}
    assert result.cells["report"].endswith("(id p)")
    assert "Completed" in repr(result) and "<table>" in result._repr_html_()


def test_params_with_spaces_and_json_use_shell_quoting(cell: RunCell, ip: Any) -> None:
    cell(PIPELINE, "q")
    line = """-p "label=two words" -p n='2' -p 'extra={"a": [1, 2]}' --no-widget"""
    ctx = ip.run_line_magic("cloaca_run", line).final_context
    assert ctx["label"] == "two words" and ctx["n"] == 2 and ctx["extra"] == {"a": [1, 2]}
    assert ctx["report"] == "two words=1"
    with pytest.raises(Exception, match="unterminated|No closing quotation"):
        ip.run_line_magic("cloaca_run", '-p "label=oops --no-widget')


def test_context_file_then_params(cell: RunCell, ip: Any, tmp_path: Path) -> None:
    cell(PIPELINE, "p")
    path = tmp_path / "ctx.json"
    path.write_text(json.dumps({"n": 2, "label": "file"}))
    result = ip.run_line_magic("cloaca_run", f"--context-file {path} -p label=cli --no-widget")
    assert result.final_context["report"] == "cli=1"


def test_selection(cell: RunCell, ip: Any) -> None:
    cell(PIPELINE, "p")
    assert list(ip.run_line_magic("cloaca_run", "--until total --no-widget").tasks) == [
        "load", "total"
    ]  # fmt: skip
    only = ip.run_line_magic("cloaca_run", "--only report -p total=7 --no-widget")
    assert list(only.tasks) == ["report"] and only.final_context["report"] == "sum=7"
    assert list(ip.run_line_magic("cloaca_run", "--from total -p rows=[1] --no-widget").tasks) == [
        "total", "report"
    ]  # fmt: skip
    with pytest.raises(TaskSelectionError, match="Did you mean 'total'"):
        ip.run_line_magic("cloaca_run", "--from totl --no-widget")


def test_failure_points_at_the_cell_and_line(cell: RunCell, ip: Any, capsys: Any) -> None:
    cell(PIPELINE, "p")
    res = cell(
        "@task(id='boom', dependencies=['total'], retry_attempts=1)\ndef boom(c):\n    x = 1\n    raise ValueError(f'bad {x}')\n",
        "b",
    )
    count = res.execution_count
    result = ip.run_line_magic("cloaca_run", "--no-widget")
    assert result.status == "Failed" and result.statuses["boom"] == "Failed"
    err = capsys.readouterr().err
    assert f"task 'boom' (defined in cell In[{count}] (id b)) failed: ValueError: bad 1" in err
    assert f"Cell In[{count}], line 4, in boom" in err
    assert "cloaca/execution" not in err and "no running event loop" not in err
    with pytest.raises(TaskExecutionError, match="bad 1"):
        ip.run_line_magic("cloaca_run", "--no-widget --raise")


def test_result_round_trips_through_json(cell: RunCell, ip: Any) -> None:
    cell(
        PIPELINE
        + "\n@task(id='bad', dependencies=['load'], retry_attempts=1)\ndef bad(c):\n    1/0\n",
        "p",
    )
    result = ip.run_line_magic("cloaca_run", "--no-widget")
    back = result_from_dict(json.loads(json.dumps(result_to_dict(result.result))))
    assert back.status == result.status == "Failed"
    assert back.final_context.to_dict() == result.final_context.to_dict()
    assert back.tasks["bad"].error.error_type == "ZeroDivisionError"
    assert back.summary()["tasks"] == result.summary()["tasks"]
    assert pickle.loads(pickle.dumps(result)).status == "Failed"


def test_parse_params() -> None:
    assert parse_params(["a=1", "b=[1, 2]", "c=text", "d="], None) == {
        "a": 1, "b": [1, 2], "c": "text", "d": "",
    }  # fmt: skip
    with pytest.raises(NotebookError, match="key=value"):
        parse_params(["nokey"], None)


FLAKY_CELL = """
from cloaca import task

CALLS = []

@task(id="always_fails", retry_attempts=4, retry_delay_ms=1)
def always_fails(context):
    CALLS.append(1)
    raise RuntimeError("boom")
"""


def test_no_retry_gives_each_task_one_attempt(cell: RunCell, ip: Any) -> None:
    cell(FLAKY_CELL, "nr")
    once = ip.run_line_magic("cloaca_run", "--no-retry --no-widget")
    assert once.tasks["always_fails"].attempts == 1 and len(ip.user_ns["CALLS"]) == 1
    again = ip.run_line_magic("cloaca_run", "--no-widget")  # the task's own policy again
    assert again.tasks["always_fails"].attempts == 4 and len(ip.user_ns["CALLS"]) == 5
    with pytest.raises(Exception, match="--no-retry applies to in-kernel"):
        ip.run_line_magic("cloaca_run", "--no-retry --isolated --no-widget")
