"""DefaultRunnerConfig: the spec's knobs, settable, to_dict, default()."""

from __future__ import annotations

import pytest

import cloaca
from cloaca import DefaultRunnerConfig


def test_defaults_match_the_spec() -> None:
    cfg = DefaultRunnerConfig.default()
    d = cfg.to_dict()
    assert d["max_concurrent_tasks"] == 4
    assert d["scheduler_poll_interval_ms"] == 100
    assert d["task_timeout_seconds"] == 300
    assert d["workflow_timeout_seconds"] == 3600  # upstream's default: one hour
    assert d["cron_max_catchup_executions"] == 100  # upstream's default
    assert d["db_pool_size"] == 10
    assert d["enable_recovery"] is True
    assert d["enable_cron_scheduling"] is True
    assert d["cron_poll_interval_seconds"] == 30
    for key in (
        "cron_max_catchup_executions",
        "cron_enable_recovery",
        "cron_recovery_interval_seconds",
        "cron_lost_threshold_minutes",
        "cron_max_recovery_age_seconds",
        "cron_max_recovery_attempts",
    ):
        assert key in d


def test_settable_and_keyword_construction() -> None:
    cfg = DefaultRunnerConfig(max_concurrent_tasks=8)
    cfg.scheduler_poll_interval_ms = 5
    assert cfg.max_concurrent_tasks == 8
    assert cfg.to_dict()["scheduler_poll_interval_ms"] == 5


def test_unknown_setting_is_an_error_naming_it() -> None:
    cfg = DefaultRunnerConfig()
    with pytest.raises(AttributeError, match="max_concurent_tasks"):
        cfg.max_concurent_tasks = 3  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        DefaultRunnerConfig(nope=1)  # type: ignore[call-arg]


def test_lazy_exports_from_cloaca() -> None:
    assert cloaca.DefaultRunnerConfig is DefaultRunnerConfig
    assert cloaca.DefaultRunner.__name__ == "DefaultRunner"
    assert cloaca.TriggerResult.fire().is_fire_result()


def test_import_cloaca_does_not_import_sqlalchemy() -> None:
    import subprocess
    import sys

    code = "import sys, cloaca; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


UPSTREAM_FIELDS = {  # upstream's DefaultRunnerConfig fields and their defaults
    "max_concurrent_tasks": 4,
    "scheduler_poll_interval_ms": 100,
    "task_timeout_seconds": 300,
    "workflow_timeout_seconds": 3600,
    "db_pool_size": 10,
    "enable_recovery": True,
    "enable_cron_scheduling": True,
    "cron_poll_interval_seconds": 30,
    "cron_enable_recovery": True,
    "cron_recovery_interval_seconds": 300,
    "cron_lost_threshold_minutes": 10,
    "cron_max_recovery_age_seconds": 86400,
    "cron_max_recovery_attempts": 3,
}


def test_every_upstream_field_with_its_default() -> None:
    cfg = DefaultRunnerConfig()
    for name, default in UPSTREAM_FIELDS.items():
        assert getattr(cfg, name) == default, name
    # cron_max_catchup_executions: present; its default and meaning belong to the cron change
    assert "cron_max_catchup_executions" in cfg.to_dict()


def test_upstream_setters_and_pipeline_timeout_alias() -> None:
    cfg = DefaultRunnerConfig(pipeline_timeout_seconds=120)
    assert cfg.workflow_timeout_seconds == 120
    cfg.set_workflow_timeout_seconds(60)
    assert cfg.pipeline_timeout_seconds == 60
    cfg.pipeline_timeout_seconds = 30
    assert cfg.workflow_timeout_seconds == 30
    cfg.set_max_concurrent_tasks(8)
    cfg.set_task_timeout_seconds(600)
    assert (cfg.max_concurrent_tasks, cfg.task_timeout_seconds) == (8, 600)
    with pytest.raises(AttributeError, match="set_nope"):
        cfg.set_nope(1)  # type: ignore[operator]


def test_with_config_honours_the_workflow_timeout(tmp_path: object) -> None:
    import time

    from cloaca import DefaultRunner, WorkflowBuilder, task

    @task(id="sleeps_past_the_deadline")
    def sleeps(context: cloaca.Context) -> cloaca.Context:
        time.sleep(2)
        return context

    wf = WorkflowBuilder("timeout_wf").add_task(sleeps).build()
    cfg = DefaultRunnerConfig(enable_cron_scheduling=False)
    cfg.set_workflow_timeout_seconds(0.2)
    runner = DefaultRunner.with_config(f"sqlite:///{tmp_path}/r.db", cfg)
    try:
        assert runner.config is cfg
        result = runner.execute(wf)
    finally:
        runner.shutdown()
    assert result.status == "Failed"
    assert "timed out" in (result.error_message or "")
