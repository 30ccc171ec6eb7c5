"""The rest of upstream's surface: namespaces, variables, decorator classes, ``invokes=``,
``_shutdown_all_runners`` and the computation-graph names that refuse clearly."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import cloaca
from cloaca import Context, TaskNamespace, WorkflowContext, task
from cloaca.errors import TaskDefinitionError, UnsupportedFeatureError
from cloaca.task import get_spec


def test_task_namespace_behaves_as_upstreams() -> None:
    ns = TaskNamespace("public", "embedded", "etl", "load")
    assert str(ns) == "public::embedded::etl::load"
    assert repr(ns) == "TaskNamespace('public', 'embedded', 'etl', 'load')"
    assert TaskNamespace.from_string(str(ns)) == ns
    assert hash(TaskNamespace.from_string(str(ns))) == hash(ns)
    assert (ns.tenant_id(), ns.package_name(), ns.workflow_id(), ns.task_id()) == (
        "public", "embedded", "etl", "load"
    )  # fmt: skip
    parent = ns.parent()
    assert parent.task_id == "" and ns.is_child_of(parent) and not parent.is_child_of(ns)
    sibling = TaskNamespace("public", "embedded", "etl", "save")
    assert ns.is_sibling_of(sibling) and not ns.is_sibling_of(ns)
    with pytest.raises(ValueError, match="Invalid namespace format"):
        TaskNamespace.from_string("a::b")


def test_workflow_context() -> None:
    ctx = WorkflowContext("t", "p", "w")
    assert str(ctx) == "t::p::w" and repr(ctx) == "WorkflowContext('t', 'p', 'w')"
    assert ctx.task_namespace("x") == TaskNamespace("t", "p", "w", "x")
    assert ctx.resolve_dependency("y") == TaskNamespace("t", "p", "w", "y")
    assert ctx.workflow_namespace() == TaskNamespace("t", "p", "w", "")
    assert ctx.contains_namespace(TaskNamespace("t", "p", "w", "z"))
    assert not ctx.contains_namespace(TaskNamespace("t", "p", "other", "z"))
    assert ctx == WorkflowContext("t", "p", "w")


def test_var_and_var_or(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOACINA_VAR_KAFKA_BROKER", "broker:9092")
    assert cloaca.var("KAFKA_BROKER") == "broker:9092"
    with pytest.raises(KeyError, match="CLOACINA_VAR_kafka_broker"):
        cloaca.var("kafka_broker")  # verbatim: no case conversion
    assert cloaca.var_or("MODEL_THRESHOLD", "0.5") == "0.5"
    monkeypatch.setenv("CLOACINA_VAR_MODEL_THRESHOLD", "0.9")
    assert cloaca.var_or("MODEL_THRESHOLD", "0.5") == "0.9"


def test_decorators_return_upstreams_decorator_classes() -> None:
    deco = task(id="deco_cls")
    assert isinstance(deco, cloaca.TaskDecorator)

    def body(context: Context) -> Context:
        return context

    assert deco(body) is body and get_spec(body) is not None
    trig = cloaca.trigger(on="nowhere", name="deco_cls_trigger")
    assert isinstance(trig, cloaca.TriggerDecorator)


def test_invokes_is_kept_and_post_invocation_needs_it() -> None:
    graph = object()

    @task(id="invokes_kept", invokes=graph)
    def kept(context: Context) -> Context:
        return context

    spec = get_spec(kept)
    assert spec is not None and spec.invokes is graph and spec.post_invocation is None
    with pytest.raises(TaskDefinitionError, match="set invokes= too"):

        @task(id="post_alone", post_invocation=lambda ctx: ctx)
        def alone(context: Context) -> Context:
            return context


@pytest.mark.parametrize(
    "name",
    [
        "ComputationGraphBuilder", "node", "reactor", "boundary_schema",
        "passthrough_accumulator", "stream_accumulator", "polling_accumulator",
        "batch_accumulator", "state_accumulator",
    ],
)  # fmt: skip
def test_computation_graph_names_refuse_clearly(name: str) -> None:
    with pytest.raises(UnsupportedFeatureError, match=f"cloaca.{name} is not supported") as info:
        getattr(cloaca, name)("x")
    assert "issue 20" in str(info.value) and isinstance(info.value, NotImplementedError)


def test_constructor_refuses_naming_the_node() -> None:
    with pytest.raises(UnsupportedFeatureError, match="node 'reader': provider nodes"):
        cloaca.constructor(id="reader", from_="cloacina-provider-fs@0.1.0")


def test_shutdown_all_runners_at_exit(tmp_path: object) -> None:
    code = textwrap.dedent(
        f"""
        import cloaca
        runner = cloaca.DefaultRunner("sqlite:///{tmp_path}/r.db")
        cloaca._shutdown_all_runners()
        print("closed", runner._closed)
        second = cloaca.DefaultRunner("sqlite:///{tmp_path}/r.db")
        print("open", second._closed)
        # no shutdown(): the atexit hook must end its threads so the interpreter exits
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["closed", "True", "open", "False"]
