from __future__ import annotations

from pathlib import Path

import pytest

from cloaca.errors import BuildError
from cloaca.packaging.discovery import discover_tasks
from tests.packaging.conftest import MakeProject


def _discover(make_project: MakeProject, files: dict[str, str], entry: str = "fixture_pkg.tasks"):
    root = make_project(files=files, entry=entry)
    return {t.id: t for t in discover_tasks(root / "src", entry)}


def test_reads_ids_dependencies_options_and_docstrings(make_project: MakeProject) -> None:
    tasks = _discover(make_project, {})
    assert list(tasks) == ["first", "second"]
    first, second = tasks["first"], tasks["second"]
    assert first.function == "fixture_pkg.tasks:first"
    assert first.entry.description == "First task."
    assert "description" not in first.explicit  # a docstring is not a decorator argument
    assert second.entry.dependencies == ["first"]
    # retry_attempts=3 is the total: the default policy, written as ``retries`` alone
    assert second.entry.retries == 2 and second.entry.retry is None
    assert second.entry.timeout_seconds == 2.5  # fractions are kept, never rounded
    assert second.explicit == {"dependencies", "retries", "retry", "timeout_seconds"}


def test_bare_decorator_aliases_and_function_references(make_project: MakeProject) -> None:
    source = """
    import cloaca as c
    from cloaca import task as step
    from cloaca.retry import RetryPolicy

    @step
    def load(context):
        return context

    @c.task(dependencies=[load], retry=RetryPolicy.default(), description="Clean it")
    def clean(context):
        return context

    @step(id="save.v2", dependencies=(clean, "load"), retry=RetryPolicy(max_attempts=5))
    def save(context):
        return context

    def not_a_task(context):
        return context
    """
    tasks = _discover(make_project, {"fixture_pkg/tasks.py": source})
    assert list(tasks) == ["load", "clean", "save.v2"]
    assert tasks["clean"].entry.dependencies == ["load"]
    assert tasks["clean"].entry.retries == 2 and tasks["clean"].entry.description == "Clean it"
    assert tasks["clean"].entry.retry is None  # the default policy travels as retries alone
    assert tasks["save.v2"].entry.dependencies == ["clean", "load"]
    assert tasks["save.v2"].entry.retries == 4
    assert tasks["save.v2"].function == "fixture_pkg.tasks:save"


def test_follows_project_imports_but_not_third_party(make_project: MakeProject) -> None:
    files = {
        "fixture_pkg/tasks.py": """
            import httpx  # not part of the project: never read
            from fixture_pkg.extract import extract
            from . import helpers
            from cloaca import task

            @task(dependencies=[extract])
            def transform(context):
                return context
        """,
        "fixture_pkg/extract.py": """
            from cloaca import task

            @task(id="extract-step")
            def extract(context):
                return context
        """,
        "fixture_pkg/helpers.py": "X = 1\n",
    }
    tasks = _discover(make_project, files)
    assert set(tasks) == {"transform", "extract-step"}
    assert tasks["transform"].entry.dependencies == ["extract-step"]
    assert tasks["extract-step"].function == "fixture_pkg.extract:extract"


@pytest.mark.parametrize(
    ("decorator", "what"),
    [
        ("@task(id=NAME)", "id="),
        ("@task(dependencies=DEPS)", "dependencies="),
        ("@task(dependencies=[helper])", "dependency 'helper'"),
        ("@task(retry_attempts=N)", "retry_attempts="),
        ("@task(retry=make_policy())", "retry="),
        ("@task(trigger_rules=RULE)", "trigger_rules="),
    ],
)
def test_non_literal_arguments_point_at_the_pyproject_table(
    make_project: MakeProject, decorator: str, what: str
) -> None:
    source = f"from cloaca import task\n\n{decorator}\ndef job(context):\n    return context\n"
    with pytest.raises(BuildError, match=r"tool.cloaca.tasks") as info:
        _discover(make_project, {"fixture_pkg/tasks.py": source})
    assert what in str(info.value)
    assert "tasks.py:" in str(info.value)


def test_missing_entry_module(make_project: MakeProject) -> None:
    root = make_project()
    with pytest.raises(BuildError, match=r"entry module 'fixture_pkg.nope' not found"):
        discover_tasks(root / "src", "fixture_pkg.nope")


def test_syntax_error_names_file_and_line(make_project: MakeProject) -> None:
    with pytest.raises(
        BuildError, match=r"cannot parse module 'fixture_pkg.tasks' \(.*tasks.py:2\)"
    ):
        _discover(make_project, {"fixture_pkg/tasks.py": "x = 1\ndef broken(:\n"})


def test_package_entry_module(make_project: MakeProject, tmp_path: Path) -> None:
    source = "from cloaca import task\n\n@task\ndef only(context):\n    return context\n"
    tasks = _discover(make_project, {"fixture_pkg/__init__.py": source}, entry="fixture_pkg")
    assert tasks["only"].function == "fixture_pkg:only"


def test_timeout_below_zero_is_refused_by_the_task_rules(make_project: MakeProject) -> None:
    source = "from cloaca import task\n\n@task(timeout_seconds=-1)\ndef job(context):\n    pass\n"
    with pytest.raises(BuildError, match=r"task 'job': timeout_seconds must be > 0.*tasks.py:4"):
        _discover(make_project, {"fixture_pkg/tasks.py": source})


def test_reads_the_whole_retry_policy_rules_and_callbacks(make_project: MakeProject) -> None:
    files = {
        "fixture_pkg/hooks.py": "def alert(task_id, error, context):\n    pass\n",
        "fixture_pkg/tasks.py": """
            import cloaca
            from cloaca import task, context_value, any_of
            from cloaca.retry import BackoffStrategy, RetryCondition, RetryPolicy
            from fixture_pkg.hooks import alert

            def done(task_id, context):
                pass

            @task(
                retry_attempts=4, retry_delay_ms=300, retry_backoff="exponential",
                retry_condition=["flaky"], timeout_seconds=0.5,
                trigger_rules=any_of(context_value("go", "Equals", True),
                                     cloaca.context_value("n", "GreaterThan", -2)),
                on_success=done, on_failure=alert,
            )
            def a(context):
                return context

            @task(retry=RetryPolicy.builder().max_attempts(3).initial_delay(0.25)
                  .backoff_strategy(BackoffStrategy.linear(1.5))
                  .retry_condition(RetryCondition.error_types(["ConnectionError"]))
                  .with_jitter(False).build())
            def b(context):
                return context
        """,
    }
    tasks = _discover(make_project, files)
    a, b = tasks["a"].entry, tasks["b"].entry
    assert a.model_dump(mode="json", exclude={"id", "function", "dependencies"}) == {
        "description": None,
        "retries": 3,
        "timeout_seconds": 0.5,
        "retry": {
            "max_attempts": 4,
            "backoff": "exponential",
            "initial_delay_seconds": 0.3,
            "max_delay_seconds": 60.0,
            "multiplier": 2.0,
            "scale": 1.0,
            "jitter": True,
            "condition": {"kind": "patterns", "values": ["flaky"]},
        },
        "trigger_rules": {
            "type": "any_of",
            "conditions": [
                {"type": "context_value", "key": "go", "op": "Equals", "value": True},
                {"type": "context_value", "key": "n", "op": "GreaterThan", "value": -2},
            ],
        },
        "on_success": "fixture_pkg.tasks:done",
        "on_failure": "fixture_pkg.hooks:alert",
    }
    assert b.retry is not None
    assert (b.retries, b.retry.backoff, b.retry.multiplier) == (2, "linear", 1.5)
    assert b.retry.initial_delay_seconds == 0.25
    assert b.retry.condition.kind == "error_types" and b.retry.condition.values == [
        "ConnectionError"
    ]


@pytest.mark.parametrize(
    ("option", "source_extra", "match"),
    [
        ("on_failure", "", r"option on_failure: is a lambda .*tasks.py:3"),
        ("on_success", "", r"option on_success: is a lambda"),
    ],
)
def test_lambda_callback_is_a_task_option_error(
    make_project: MakeProject, option: str, source_extra: str, match: str
) -> None:
    from cloaca.errors import TaskOptionError

    source = (
        f"from cloaca import task\n\n@task({option}=lambda *a: None)\ndef job(context):\n    pass\n"
    )
    with pytest.raises(TaskOptionError, match=match) as info:
        _discover(make_project, {"fixture_pkg/tasks.py": source})
    assert (info.value.task_id, info.value.field) == ("job", option)


def test_closure_callback_is_a_task_option_error(make_project: MakeProject) -> None:
    from cloaca.errors import TaskOptionError

    source = """
    from cloaca import task

    def make():
        def inner(task_id, context):
            pass
        return inner

    @task(on_success=inner)
    def job(context):
        pass
    """
    with pytest.raises(TaskOptionError, match=r"'inner' .* not a module-level function") as info:
        _discover(make_project, {"fixture_pkg/tasks.py": source})
    assert (info.value.task_id, info.value.field) == ("job", "on_success")


def test_unknown_decorator_option_is_named(make_project: MakeProject) -> None:
    source = "from cloaca import task\n\n@task(retries=3)\ndef job(context):\n    pass\n"
    with pytest.raises(BuildError, match=r"unknown @task option 'retries'"):
        _discover(make_project, {"fixture_pkg/tasks.py": source})
