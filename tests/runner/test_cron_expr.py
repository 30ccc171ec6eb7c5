"""Cron expressions read as upstream does: 6/7 fields are seconds first, 5 fields unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloaca.runner.cron_expr import next_run, validate_cron

T0 = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC).timestamp()  # a Monday


def _runs(expr: str, n: int, tz: str = "UTC", after: float = T0) -> list[datetime]:
    out = []
    for _ in range(n):
        after = next_run(expr, tz, after)
        out.append(datetime.fromtimestamp(after, ZoneInfo(tz)))
    return out


def test_upstream_tutorial_every_30_seconds() -> None:
    # tutorial 05: "*/30 * * * * *" fires every 30 seconds
    assert [d.second for d in _runs("*/30 * * * * *", 4)] == [30, 0, 30, 0]
    gaps = {
        (b - a).total_seconds()
        for a, b in zip(_runs("*/30 * * * * *", 5), _runs("*/30 * * * * *", 6)[1:], strict=False)
    }
    assert gaps == {30.0}


def test_the_issue_example_every_five_seconds_not_every_second() -> None:
    runs = _runs("*/5 * * * * *", 3)
    assert [(d.minute, d.second) for d in runs] == [(0, 5), (0, 10), (0, 15)]


def test_six_fields_seconds_first_weekday_morning() -> None:
    (run,) = _runs("15 30 9 * * 1-5", 1)
    assert (run.weekday(), run.hour, run.minute, run.second) == (0, 9, 30, 15)


def test_seven_fields_last_is_the_year() -> None:
    (run,) = _runs("0 0 12 1 1 * 2028", 1)
    assert (run.year, run.month, run.day, run.hour) == (2028, 1, 1, 12)


def test_five_fields_are_unchanged() -> None:
    assert [(d.hour, d.minute, d.second) for d in _runs("*/15 * * * *", 2)] == [
        (8, 15, 0),
        (8, 30, 0),
    ]


def test_timezone_is_honoured() -> None:
    (run,) = _runs("0 0 9 * * *", 1, "Europe/Paris")
    assert (run.hour, run.minute, run.utcoffset().total_seconds()) == (9, 0, 3600)


@given(st.integers(1, 59), st.integers(0, 86_400 * 30))
def test_every_n_seconds_fires_on_multiples_of_n(n: int, offset: int) -> None:
    after = T0 + offset
    nxt = next_run(f"*/{n} * * * * *", "UTC", after)
    second = datetime.fromtimestamp(nxt, UTC).second
    assert nxt > after and second % n == 0 and nxt - after <= 60


@given(st.integers(0, 59), st.integers(0, 59), st.integers(0, 23))
def test_explicit_sec_min_hour_round_trip(sec: int, minute: int, hour: int) -> None:
    (run,) = _runs(f"{sec} {minute} {hour} * * *", 1)
    assert (run.hour, run.minute, run.second) == (hour, minute, sec)


@pytest.mark.parametrize("bad", ["every day", "* * * *", "60 * * * * *", "* * * * * * * *", ""])
def test_bad_expressions_name_the_expression_and_the_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="seconds first") as info:
        validate_cron(bad)
    assert repr(bad) in str(info.value)


def test_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        validate_cron("0 3 * * *", "Mars/Olympus")
