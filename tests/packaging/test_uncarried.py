"""Declarations the manifest cannot carry yet (``invokes=``, ``post_invocation=``,
``@workflow_params``, ``@workflow_secrets``) make the build refuse — never a silent drop —
both from source (static discovery) and from live specs (the one spec codec)."""

from __future__ import annotations

import pytest

from cloaca import Context, task, workflow_params
from cloaca.errors import TaskOptionError
from cloaca.packaging.discovery import discover_tasks
from cloaca.packaging.spec_codec import spec_to_entry
from cloaca.task import get_spec
from tests.packaging.conftest import MakeProject

GRAPH = object()  # stands for a computation graph (they arrive with issue 20)


def after_graph(context: Context) -> Context:
    return context


@pytest.mark.parametrize(
    ("decorators", "option"),
    [
        ("@task(invokes=graph)", "invokes"),
        ("@task(invokes=graph, post_invocation=after)", "invokes"),
        ("@cloaca.workflow_params(source_id=str)\n@task()", "workflow_params"),
        ('@workflow_secrets("db_prod")\n@task()', "workflow_secrets"),
    ],
)
def test_static_discovery_refuses(make_project: MakeProject, decorators: str, option: str) -> None:
    source = f"""
import cloaca
from cloaca import task, workflow_secrets

graph = None

def after(context):
    return context

{decorators}
def step(context):
    return context
"""
    root = make_project(files={"fixture_pkg/tasks.py": source}, entry="fixture_pkg.tasks")
    with pytest.raises(TaskOptionError) as info:
        discover_tasks(root / "src", "fixture_pkg.tasks")
    err = info.value
    assert (err.task_id, err.field) == ("step", option)
    assert "for the package build" in str(err) and "tasks.py:" in str(err)


def test_live_specs_are_refused_by_the_codec() -> None:
    @task(id="invoking", invokes=GRAPH, post_invocation=after_graph)
    def invoking(context: Context) -> Context:
        return context

    spec = get_spec(invoking)
    assert spec is not None and spec.invokes is GRAPH and spec.post_invocation is after_graph
    with pytest.raises(TaskOptionError, match="issue 20") as info:
        spec_to_entry(spec, function="pkg:invoking")
    assert info.value.field == "invokes"

    @workflow_params(n=int)
    @task(id="with_params")
    def with_params(context: Context) -> Context:
        return context

    with pytest.raises(TaskOptionError, match="workflow params are not carried"):
        spec_to_entry(get_spec(with_params), function="pkg:with_params")  # type: ignore[arg-type]

    @task(id="plain_one")
    def plain_one(context: Context) -> Context:
        return context

    assert spec_to_entry(get_spec(plain_one), function="pkg:plain_one").id == "plain_one"  # type: ignore[arg-type]
