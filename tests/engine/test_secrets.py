"""Secrets: ``Context.secret``/``secret_field`` resolved at run time and never persisted —
checked by reading every table and the raw files of the durable runner's SQLite database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import cloaca
from cloaca import Context, WorkflowBuilder, task, workflow_params, workflow_secrets
from cloaca.errors import SecretError, TaskDefinitionError, WorkflowValidationError
from cloaca.secrets import resolve_secret, set_secret_resolver

PASSWORD = "pw-9f3c1e7a-never-stored"
USERNAME = "svc-user-4411"


@pytest.fixture(autouse=True)
def no_resolver() -> Iterator[None]:
    set_secret_resolver(None)
    yield
    set_secret_resolver(None)


def _secret_workflow(name: str) -> cloaca.Workflow:
    with WorkflowBuilder(name):

        @workflow_secrets("db_prod")
        @task(id=f"{name}_use")
        def use(context: Context) -> Context:
            creds = context.secret("db_prod")
            password = context.secret_field("db_prod", "password")
            context.set("login_ok", creds["username"] == USERNAME and len(password) == 24)
            return context

        @task(id=f"{name}_after", dependencies=[f"{name}_use"])
        def after(context: Context) -> Context:
            context.set("saw_keys", sorted(context.keys()))
            return context

    return cloaca.get_workflow(name)


def _everything_stored(db: Path) -> str:
    """Every row of every table, as text, plus the raw bytes of the database files."""
    parts: list[str] = []
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                parts.append(json.dumps(row, default=repr))
    for path in db.parent.iterdir():
        parts.append(path.read_bytes().decode("latin-1"))
    assert "execution_events" in tables  # the event log is among what was read
    return "\n".join(parts)


def test_secret_is_resolved_at_run_time_and_never_persisted(tmp_path: Path) -> None:
    wf = _secret_workflow("sec_durable")
    assert wf.declared_secrets == ("db_prod",)
    set_secret_resolver({"db_prod": {"username": USERNAME, "password": PASSWORD}})
    db = tmp_path / "runner.db"
    config = cloaca.DefaultRunnerConfig(enable_cron_scheduling=False)
    with cloaca.DefaultRunner.with_config(f"sqlite:///{db}", config) as runner:
        result = runner.execute("sec_durable", Context({"job": 1}))
        events = runner.get_execution(result.execution_id or "")
    assert result.status == "Completed", result.error_message
    assert result.final_context["login_ok"] is True
    assert result.final_context["saw_keys"] == ["job", "login_ok"]
    assert events is not None
    stored = _everything_stored(db)
    assert "login_ok" in stored  # the context was stored ...
    assert PASSWORD not in stored and USERNAME not in stored  # ... the secret was not
    assert PASSWORD not in json.dumps(result.final_context.to_dict())


def test_without_a_resolver_the_task_fails_clearly() -> None:
    result = _secret_workflow("sec_none").run()
    assert result.status == "Failed"
    err = result.tasks["sec_none_use"].error
    assert err is not None and err.error_type == "SecretError"
    assert "no secret resolver is configured" in str(err)
    assert result.tasks["sec_none_after"].status == "Skipped"
    with pytest.raises(RuntimeError, match="set_secret_resolver"):
        Context().secret("db_prod")


def test_unknown_secret_and_field_are_key_errors() -> None:
    set_secret_resolver({"db_prod": {"password": "x"}})
    with pytest.raises(KeyError, match="'db_staging' not found"):
        Context().secret("db_staging")
    with pytest.raises(KeyError, match="no field 'host'"):
        Context().secret_field("db_prod", "host")
    assert Context().secret_field("db_prod", "password") == "x"


def test_callable_resolver_may_refuse_with_permission_error() -> None:
    def resolver(name: str) -> dict[str, str]:
        if name != "granted":
            raise PermissionError(f"secret {name!r} is not granted to this workflow")
        return {"token": "t"}

    set_secret_resolver(resolver)
    assert resolve_secret("granted") == {"token": "t"}
    with pytest.raises(PermissionError, match="not granted"):
        Context().secret("other")


def test_env_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    set_secret_resolver(cloaca.EnvSecretResolver())
    monkeypatch.setenv("CLOACINA_SECRET_stripe_key", json.dumps({"key": "sk_1"}))
    assert Context().secret_field("stripe_key", "key") == "sk_1"
    monkeypatch.setenv("CLOACINA_SECRET_broken", "not json")
    with pytest.raises(SecretError, match="CLOACINA_SECRET_broken is not a JSON object"):
        Context().secret("broken")
    with pytest.raises(KeyError, match="CLOACINA_SECRET_absent"):
        Context().secret("absent")


def test_declarations_are_checked() -> None:
    with pytest.raises(TaskDefinitionError, match="duplicate secret name"):
        workflow_secrets("a", "a")
    with pytest.raises(TaskDefinitionError, match="invalid secret name '1x'"):
        workflow_secrets("1x")
    assert isinstance(workflow_secrets("a"), cloaca.WorkflowSecretsDecorator)
    with pytest.raises(WorkflowValidationError, match="both as param and as secret"):
        with WorkflowBuilder("sec_clash"):

            @workflow_params(token=str)
            @workflow_secrets("token")
            @task(id="sec_clash_t")
            def t(context: Context) -> Context:
                return context
