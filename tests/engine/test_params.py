"""@workflow_params: declared, validated workflow inputs (upstream's declare-workflow-inputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import cloaca
from cloaca import Context, WorkflowBuilder, task, workflow_params
from cloaca.errors import TaskDefinitionError, WorkflowInputError, WorkflowValidationError


def _wf(name: str) -> cloaca.Workflow:
    with WorkflowBuilder(name):

        @workflow_params(source_id=str, batch_size=(int, 500), ratio=(float, 0.5))
        @task(id=f"{name}_prepare")
        def prepare(context: Context) -> Context:
            context.set("seen", [context.get("source_id"), context.get("batch_size")])
            return context

    return cloaca.get_workflow(name)


def test_declaration_is_collected_with_upstreams_input_slots() -> None:
    wf = _wf("p_decl")
    slots = [d.json_schema() for d in wf.declared_params.values()]
    assert slots == [
        {"name": "source_id", "schema": {"type": "string"}, "required": True},
        {"name": "batch_size", "schema": {"type": "integer"}, "required": False, "default": 500},
        {"name": "ratio", "schema": {"type": "number"}, "required": False, "default": 0.5},
    ]
    assert isinstance(workflow_params(a=str), cloaca.WorkflowParamsDecorator)


def test_defaults_are_filled_and_undeclared_keys_pass_through() -> None:
    result = _wf("p_ok").run({"source_id": "s1", "extra": True, "ratio": 2})
    assert result.status == "Completed"
    assert result.final_context["seen"] == ["s1", 500]
    assert result.final_context["extra"] is True
    assert result.final_context["ratio"] == 2  # an int is a valid float, kept as given


@pytest.mark.parametrize(
    ("initial", "match"),
    [
        ({}, "missing required param 'source_id'"),
        ({"source_id": 7}, "param 'source_id' must be string"),
        ({"source_id": "s", "batch_size": "500"}, "param 'batch_size' must be integer"),
        ({"source_id": "s", "batch_size": True}, "param 'batch_size' must be integer"),
    ],
)
def test_bad_inputs_are_refused_before_any_task_runs(initial: dict, match: str) -> None:
    wf = _wf("p_bad")
    with pytest.raises(WorkflowInputError, match=match) as info:
        wf.run(initial)
    assert isinstance(info.value, ValueError)
    assert "invalid execution context" in str(info.value)


def test_durable_runner_refuses_before_writing_anything(tmp_path: Path) -> None:
    _wf("p_durable")
    config = cloaca.DefaultRunnerConfig(enable_cron_scheduling=False)
    with cloaca.DefaultRunner.with_config(f"sqlite:///{tmp_path}/r.db", config) as runner:
        with pytest.raises(WorkflowInputError, match="source_id"):
            runner.execute("p_durable", Context({"batch_size": 3}))
        assert runner.list_executions() == []
        ok = runner.execute("p_durable", Context({"source_id": "x"}))
        assert ok.status == "Completed" and ok.final_context["batch_size"] == 500
        stored = runner.get_execution(ok.execution_id or "")
    assert stored is not None and stored.status == "Completed"


def test_bad_declarations_are_refused_at_decoration() -> None:
    with pytest.raises(TaskDefinitionError, match="type <class 'set'>"):
        workflow_params(tags=set)
    with pytest.raises(TaskDefinitionError, match="default of param 'n' must be integer"):
        workflow_params(n=(int, "ten"))
    with pytest.raises(TaskDefinitionError, match="type or \\(type, default\\)"):
        workflow_params(n=(int, 1, 2))


def test_conflicting_declarations_in_one_workflow() -> None:
    with pytest.raises(WorkflowValidationError, match="param 'n' is declared twice"):
        with WorkflowBuilder("p_conflict"):

            @workflow_params(n=int)
            @task(id="p_conflict_a")
            def a(context: Context) -> Context:
                return context

            @workflow_params(n=(int, 3))
            @task(id="p_conflict_b")
            def b(context: Context) -> Context:
                return context
