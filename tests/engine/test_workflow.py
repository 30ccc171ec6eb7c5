import asyncio

import pytest

import cloaca
from cloaca import Context, TaskRegistry, WorkflowBuilder, task
from cloaca.errors import DuplicateTaskError, WorkflowNotFoundError, WorkflowValidationError
from cloaca.workflow import unregister_workflow


def test_context_manager_registers_by_name():
    from tests.engine.fixtures import diamond  # noqa: F401 - registers on import

    wf = cloaca.get_workflow("fixture-diamond")
    assert wf.task_ids == ["a", "b", "c", "d"] and wf.description == "diamond fixture"
    assert "fixture-diamond" in cloaca.list_workflows()


def test_unknown_workflow_suggests():
    with pytest.raises(WorkflowNotFoundError, match="Did you mean 'fixture-diamond'"):
        from tests.engine.fixtures import diamond  # noqa: F401

        cloaca.get_workflow("fixture-diamnd")


def test_validation_error_at_registration_names_workflow():
    with pytest.raises(WorkflowValidationError, match="wf-bad.*'orphan'.*'nowhere'"):
        with WorkflowBuilder("wf-bad"):

            @task(id="orphan", dependencies=["nowhere"])
            def orphan(ctx):
                pass

    assert "wf-bad" not in cloaca.list_workflows()


def test_duplicate_ids_in_one_workflow():
    with pytest.raises(DuplicateTaskError, match="'same'"):
        with WorkflowBuilder("wf-dup"):

            @task(id="same")
            def one(ctx):
                pass

            @task(id="same")
            def two(ctx):
                pass


def test_version_changes_with_content():
    def make(body: int):
        @task(id=f"v{body}")
        def step(ctx):
            ctx["v"] = body

        return WorkflowBuilder("wf-version").add_task(step).build()

    assert make(1).version != make(2).version
    assert make(1).version == make(1).version


def test_constructor_registration():
    @task(id="ctor-task")
    def ctor_task(ctx):
        ctx["built"] = True

    cloaca.register_workflow_constructor(
        "wf-ctor", lambda: WorkflowBuilder("wf-ctor").add_task(ctor_task).build()
    )
    try:
        result = cloaca.get_workflow("wf-ctor").run()
        assert result.final_context["built"] is True
    finally:
        unregister_workflow("wf-ctor")


def test_add_task_by_id_from_global_registry():
    @task(id="global-lookup")
    def global_lookup(ctx):
        ctx["ok"] = 1

    wf = WorkflowBuilder("wf-global").add_task("global-lookup").build()
    assert wf.run().final_context.to_dict() == {"ok": 1}


async def test_fluent_registry_start_from_and_execute():
    reg = TaskRegistry()

    @task(id="first")
    def first(ctx):
        ctx["first"] = True

    @task(id="second", dependencies=["first"])
    async def second(ctx):
        await asyncio.sleep(0)
        ctx["second"] = ctx.get("first", False)

    reg.add(first, namespace="pkg")
    reg.add(second, namespace="pkg")
    full = await WorkflowBuilder().with_registry(reg).build().execute(Context({}))
    assert full.to_dict() == {"first": True, "second": True}
    partial = await WorkflowBuilder().with_registry(reg).start_from_task("second").build().execute()
    assert partial.to_dict() == {"second": False}


async def test_execute_raises_the_task_error():
    @task(id="boom")
    def boom(ctx):
        raise RuntimeError("exploded")

    with pytest.raises(cloaca.TaskExecutionError, match="boom.*RuntimeError: exploded"):
        await WorkflowBuilder("wf-raise").add_task(boom).build().execute()


def test_registry_resolution_and_ambiguity():
    reg = TaskRegistry()

    @task(id="shared")
    def shared(ctx):
        pass

    reg.add(shared, namespace="p1")
    assert reg.resolve("shared") == "p1::shared"
    reg.add(shared, namespace="p2")
    with pytest.raises(cloaca.errors.TaskSelectionError, match="ambiguous"):
        reg.resolve("shared")
    with pytest.raises(cloaca.errors.TaskSelectionError, match="Did you mean"):
        reg.resolve("p1::sharde")
    assert reg.remove_namespace("p1") == 1 and reg.keys() == ["p2::shared"]
