"""Cron expressions as Cloacina reads them: validation and the next matching time.

Five fields are ``minute hour day-of-month month day-of-week``. Six and seven fields put
**seconds first** — ``second minute hour day-of-month month day-of-week [year]`` — so
``*/30 * * * * *`` is every 30 seconds. Times are computed with croniter in the schedule's
IANA timezone.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_HELP = (
    "use five fields 'min hour dom mon dow' (e.g. '*/5 * * * *') or, seconds first, "
    "'sec min hour dom mon dow [year]' (e.g. '*/30 * * * * *')"
)


def cron_iter(expression: str, start: datetime) -> croniter:
    """A croniter over ``expression`` (seconds-first when it has six or seven fields)."""
    return croniter(expression, start, second_at_beginning=True)


def next_run(expression: str, timezone: str, after: float) -> float:
    """The first time strictly after ``after`` (epoch seconds) matching ``expression``."""
    base = datetime.fromtimestamp(after, ZoneInfo(timezone))
    return float(cron_iter(expression, base).get_next(float))


def validate_cron(expression: str, timezone: str = "UTC") -> None:
    """Check ``expression`` and ``timezone``.

    Raises
    ------
    ValueError
        Naming the bad expression (and the accepted forms) or the unknown timezone.
    """
    fields = expression.split() if isinstance(expression, str) else []
    if len(fields) not in (5, 6, 7) or not croniter.is_valid(expression, second_at_beginning=True):
        raise ValueError(f"invalid cron expression {expression!r}; {_HELP}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {timezone!r}; use an IANA name like 'UTC'") from exc
