"""Upstream's workflow surface: Workflow inspection, WorkflowBuilder namespaces, upstream's
error wording, and the WorkflowResult fields."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

import cloaca
from cloaca import Context, Workflow, WorkflowBuilder, task
from cloaca.errors import CycleError, WorkflowValidationError


def _diamond(name: str) -> Workflow:
    with WorkflowBuilder(name) as builder:

        @task(id=f"{name}_fetch")
        def fetch(context: Context) -> Context:
            return context

        @task(id=f"{name}_a", dependencies=[f"{name}_fetch"])
        def a(context: Context) -> Context:
            return context

        @task(id=f"{name}_b", dependencies=[f"{name}_fetch"])
        def b(context: Context) -> Context:
            return context

        @task(id=f"{name}_combine", dependencies=[f"{name}_a", f"{name}_b"])
        def combine(context: Context) -> Context:
            return context

        @task(id=f"{name}_lonely")
        def lonely(context: Context) -> Context:
            return context

    assert builder.name == name
    return cloaca.get_workflow(name)


def test_inspection_methods_follow_the_dag() -> None:
    wf = _diamond("insp")
    order = wf.topological_sort()
    assert sorted(order) == sorted(wf.tasks)
    for node in order:
        for dep in wf.dag.deps[node]:
            assert order.index(dep) < order.index(node)
    assert wf.get_execution_levels() == [
        ["insp_fetch", "insp_lonely"],
        ["insp_a", "insp_b"],
        ["insp_combine"],
    ]
    assert wf.get_roots() == ["insp_fetch", "insp_lonely"]
    assert wf.get_leaves() == ["insp_lonely", "insp_combine"]
    assert wf.validate() is None


def test_inspection_of_a_selected_sub_dag() -> None:
    sub = _diamond("sub").subset(start_from="sub_a")
    assert sub.topological_sort() == ["sub_a", "sub_combine"]
    assert sub.get_execution_levels() == [["sub_a"], ["sub_combine"]]


def test_validate_uses_the_one_validator() -> None:
    wf = _diamond("val")
    # corrupt the graph behind the built workflow's back: validate() must check it again
    deps = dict(wf.dag.deps)
    deps["val_fetch"] = ("val_combine",)
    wf.dag = SimpleNamespace(deps=deps)  # type: ignore[assignment]
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert isinstance(info.value, ValueError)
    assert info.value.cycle is not None and "val_fetch" in info.value.cycle


def test_builder_namespace_defaults_and_keywords() -> None:
    plain = WorkflowBuilder("ns_wf")
    assert str(plain.context) == "public::embedded::ns_wf"
    custom = WorkflowBuilder("ns_wf", tenant="acme", package="etl", workflow="nightly")
    ns = custom.namespace_of("load")
    assert str(ns) == "acme::etl::nightly::load"
    assert ns.tenant_id == "acme" and ns.tenant_id() == "acme"
    assert custom.context.contains_namespace(ns)
    assert ns.is_child_of(custom.context.workflow_namespace())


def test_unknown_task_carries_upstreams_wording() -> None:
    @task(id="known_for_wording")
    def known(context: Context) -> Context:
        return context

    with pytest.raises(ValueError, match="not found in registry") as info:
        WorkflowBuilder("w").add_task("known_for_wordin")
    assert "Did you mean 'known_for_wording'" in str(info.value)
    assert info.value.task_id == "known_for_wordin"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="'not_a_task' not found in registry"):

        def not_a_task(context: Context) -> Context:
            return context

        WorkflowBuilder("w").add_task(not_a_task)


def test_empty_workflow_carries_upstreams_wording() -> None:
    with pytest.raises(WorkflowValidationError, match="'empty_one' cannot be empty"):
        WorkflowBuilder("empty_one").build()
    with pytest.raises(ValueError, match="cannot be empty"):
        with WorkflowBuilder("empty_two"):
            pass


def test_workflow_result_fields(tmp_path: object) -> None:
    wf = _diamond("res")
    with cloaca.DefaultRunner(
        f"sqlite:///{tmp_path}/r.db", cloaca.DefaultRunnerConfig(enable_cron_scheduling=False)
    ) as runner:
        result = runner.execute("res", Context({"input": 42}))
    assert isinstance(result, cloaca.WorkflowResult)
    assert result.status == "Completed" and result.error_message is None
    started = datetime.fromisoformat(result.start_time)
    assert result.end_time is not None
    finished = datetime.fromisoformat(result.end_time)
    assert started <= finished and started.tzinfo is not None
    assert abs((finished - started).total_seconds() - result.duration) < 1e-3
    assert result.final_context.get("input") == 42
    assert wf.name == "res"
