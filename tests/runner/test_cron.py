"""Cron schedules: the API, on-time runs by the service thread, the missed-run policy and
single firing of a slot when several runners share a database."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter
from sqlalchemy import update

from cloaca import DefaultRunner, DefaultRunnerConfig
from cloaca.storage.models import cron_schedules as cs
from tests.runner.test_execute import diamond


def _manual(**kw: object) -> DefaultRunnerConfig:
    """No service-driven cron ticks: the test calls ``_cron_tick`` itself."""
    return DefaultRunnerConfig(enable_cron_scheduling=False, **kw)  # type: ignore[arg-type]


def _backdate(runner: DefaultRunner, sid: str, seconds: float) -> None:
    with runner.store.write() as conn:
        conn.execute(update(cs).where(cs.c.id == sid).values(next_run_at=time.time() - seconds))


def test_schedule_api(sqlite_url: str) -> None:
    with DefaultRunner(sqlite_url, _manual()) as runner:
        sid = runner.register_cron_workflow("cron_api", "0 3 * * *", "Europe/Paris")
        sched = runner.get_cron_schedule(sid)
        assert {k: sched[k] for k in ("id", "workflow_name", "cron_expression", "timezone")} == {
            "id": sid,
            "workflow_name": "cron_api",
            "cron_expression": "0 3 * * *",
            "timezone": "Europe/Paris",
        }
        assert sched["enabled"] is True
        local = sched["next_run_at"].astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (3, 0)
        assert sched["next_run_at"] > datetime.now(UTC)

        runner.update_cron_schedule(sid, "30 4 * * *", "UTC")
        updated = runner.get_cron_schedule(sid)
        assert (updated["next_run_at"].hour, updated["next_run_at"].minute) == (4, 30)
        assert updated["timezone"] == "UTC"

        other = runner.register_cron_workflow("cron_api", "*/5 * * * *")
        runner.set_cron_schedule_enabled(sid, False)
        assert [s["id"] for s in runner.list_cron_schedules(enabled_only=True)] == [other]
        assert [s["id"] for s in runner.list_cron_schedules()] == [sid, other]
        assert [s["id"] for s in runner.list_cron_schedules(limit=1, offset=1)] == [other]

        runner.delete_cron_schedule(sid)
        with pytest.raises(KeyError):
            runner.get_cron_schedule(sid)
        with pytest.raises(KeyError):
            runner.delete_cron_schedule(sid)


def test_invalid_expression_and_timezone(sqlite_url: str) -> None:
    with DefaultRunner(sqlite_url, _manual()) as runner:
        with pytest.raises(ValueError, match="cron expression"):
            runner.register_cron_workflow("w", "every day")
        with pytest.raises(ValueError, match="timezone"):
            runner.register_cron_workflow("w", "0 3 * * *", "Mars/Olympus")


@pytest.mark.slow
def test_service_starts_runs_on_time_and_records_them(sqlite_url: str) -> None:
    # one catch-up run at most: on a loaded machine an every-second schedule must not snowball
    cfg = DefaultRunnerConfig(cron_poll_interval_seconds=30, cron_max_catchup_executions=1)
    with DefaultRunner(sqlite_url, cfg) as runner:
        runner.register_workflow(diamond("cron_every_second"))
        # six fields: seconds first (every second)
        sid = runner.register_cron_workflow("cron_every_second", "* * * * * *")
        deadline = time.monotonic() + 30
        while True:
            done = [h for h in runner.get_cron_execution_history(sid) if h["status"] == "Completed"]
            if len(done) >= 2:
                break
            assert time.monotonic() < deadline, runner.get_cron_execution_history(sid)
            time.sleep(0.1)
        runner.set_cron_schedule_enabled(sid, False)
    # read back once the scheduling runner has shut down: a run it had already claimed could
    # otherwise land between the history and the stats queries
    quiet = DefaultRunnerConfig(enable_cron_scheduling=False, enable_recovery=False)
    with DefaultRunner(sqlite_url, quiet) as reader:
        history = reader.get_cron_execution_history(sid)
        record = reader.get_execution(done[0]["execution_id"])
        stats = reader.get_cron_execution_stats()
    assert record is not None and record.origin == "cron" and record.status == "Completed"
    slots = [h["scheduled_time"] for h in history]
    assert len(set(slots)) == len(slots)  # one run per slot
    assert stats["successful_executions"] >= 2
    assert stats["total_executions"] == len(history)


def _due_slots(expr: str, after: float, now: float) -> list[float]:
    it, out = croniter(expr, datetime.fromtimestamp(after - 1, UTC), second_at_beginning=True), []
    while (slot := it.get_next(float)) <= now:
        out.append(slot)
    return out


@pytest.mark.parametrize("catchup", [1, 3])
def test_missed_runs_start_the_most_recent_catchup_slots(sqlite_url: str, catchup: int) -> None:
    with DefaultRunner(sqlite_url, _manual(cron_max_catchup_executions=catchup)) as runner:
        runner.register_workflow(diamond("cron_missed"))
        sid = runner.register_cron_workflow("cron_missed", "*/5 * * * *")
        _backdate(runner, sid, 3 * 3600)  # the runners were down for three hours
        backdated = runner.get_cron_schedule(sid)["next_run_at"].timestamp()
        runner._cron_tick()
        now = time.time()
        history = runner.get_cron_execution_history(sid)
        expected = _due_slots("*/5 * * * *", backdated, now)[-catchup:]
        assert sorted(h["scheduled_time"].timestamp() for h in history) == expected
        assert runner.get_cron_schedule(sid)["next_run_at"].timestamp() > now
        for h in history:
            assert runner.wait(h["execution_id"], timeout=30).status == "Completed"
        runner._cron_tick()  # nothing more is due
        assert len(runner.get_cron_execution_history(sid)) == catchup


def test_missed_runs_older_than_max_recovery_age_are_dropped(sqlite_url: str) -> None:
    cfg = _manual(cron_max_catchup_executions=1000, cron_max_recovery_age_seconds=3600)
    with DefaultRunner(sqlite_url, cfg) as runner:
        runner.register_workflow(diamond("cron_old"))
        sid = runner.register_cron_workflow("cron_old", "0 * * * *")
        _backdate(runner, sid, 5 * 3600)
        runner._cron_tick()
        history = runner.get_cron_execution_history(sid)
        assert len(history) == 1  # only the slot within the last hour
        assert history[0]["scheduled_time"] > datetime.now(UTC) - timedelta(hours=1)


def test_two_runners_fire_a_slot_once(sqlite_url: str) -> None:
    with (
        DefaultRunner(sqlite_url, _manual()) as r1,
        DefaultRunner(sqlite_url, _manual()) as r2,
    ):
        for r in (r1, r2):
            r.register_workflow(diamond("cron_shared"))
        sid = r1.register_cron_workflow("cron_shared", "*/10 * * * *")
        _backdate(r1, sid, 11 * 60)  # one or two */10 slots are due (catch-up starts them all)
        backdated = r1.get_cron_schedule(sid)["next_run_at"].timestamp()
        r1._cron_tick()
        r2._cron_tick()
        due = _due_slots("*/10 * * * *", backdated, time.time())
        history = r2.get_cron_execution_history(sid)
        assert sorted(h["scheduled_time"].timestamp() for h in history) == due
        stats = r1.get_cron_execution_stats(since=datetime.now(UTC) - timedelta(hours=1))
        assert stats["total_executions"] == len(due) >= 1


def test_lost_cron_run_is_started_again(sqlite_url: str) -> None:
    from sqlalchemy import insert

    from cloaca.storage.models import cron_executions as ce

    cfg = _manual(cron_lost_threshold_minutes=0, cron_max_recovery_attempts=1)
    with DefaultRunner(sqlite_url, cfg) as runner:
        runner.register_workflow(diamond("cron_lost"))
        sid = runner.register_cron_workflow("cron_lost", "0 0 * * *")
        with runner.store.write() as conn:  # claimed by a runner that died before starting it
            conn.execute(
                insert(ce),
                [
                    {
                        "schedule_id": sid,
                        "scheduled_time": time.time() - 60,
                        "execution_id": "never-written",
                        "claimed_at": time.time() - 60,
                        "claimed_by": "dead",
                        "recovery_attempts": 0,
                    }
                ],
            )
        assert runner.get_cron_execution_history(sid)[0]["status"] == "Lost"
        runner._cron_next_recovery = 0.0
        runner._cron_tick()
        entry = runner.get_cron_execution_history(sid)[0]
        assert entry["recovery_attempts"] == 1
        assert runner.wait(entry["execution_id"], timeout=30).status == "Completed"


def test_a_schedule_added_during_a_tick_is_seen_at_once(sqlite_url: str) -> None:
    # the race behind a 20-30 s stall under load: a schedule registered while the service's
    # tick was reading the schedules must not leave the tick sleeping a full poll interval
    with DefaultRunner(
        sqlite_url, _manual(cron_poll_interval_seconds=30, cron_enable_recovery=False)
    ) as runner:
        runner.register_workflow(diamond("cron_race"))
        real = runner.known_workflows
        added: list[str] = []

        def known_and_register():  # type: ignore[no-untyped-def]
            names = real()
            if not added:  # another thread registers right after the tick read the names
                added.append(runner.register_cron_workflow("cron_race", "0 0 1 1 *"))
            return names

        runner.known_workflows = known_and_register  # type: ignore[method-assign]
        runner._cron_next_check = 0.0
        assert runner._cron_tick() == 0.0 and added
        runner.known_workflows = real  # type: ignore[method-assign]
        assert 0.0 < runner._cron_tick() <= 30
