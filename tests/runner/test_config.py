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
    assert d["workflow_timeout_seconds"] is None
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
