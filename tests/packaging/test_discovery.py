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
    assert first.description == "First task."
    assert "description" not in first.explicit  # a docstring is not a decorator argument
    assert second.dependencies == ("first",)
    assert second.retries == 3
    assert second.timeout_seconds == 3  # whole seconds, rounded up
    assert second.explicit == {"dependencies", "retries", "timeout_seconds"}


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
    assert tasks["clean"].dependencies == ("load",)
    assert tasks["clean"].retries == 2 and tasks["clean"].description == "Clean it"
    assert tasks["save.v2"].dependencies == ("clean", "load")
    assert tasks["save.v2"].retries == 4
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
    assert tasks["transform"].dependencies == ("extract-step",)
    assert tasks["extract-step"].function == "fixture_pkg.extract:extract"


@pytest.mark.parametrize(
    ("decorator", "what"),
    [
        ("@task(id=NAME)", "id="),
        ("@task(dependencies=DEPS)", "dependencies="),
        ("@task(dependencies=[helper])", "dependency 'helper'"),
        ("@task(retry_attempts=N)", "retry_attempts="),
        ("@task(retry=make_policy())", "retry="),
        ("@task(timeout_seconds=-1)", "timeout_seconds="),
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
