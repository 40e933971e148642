"""Time limits in working days (工作日) on the Chinese calendar: weekends, public holidays and
the make-up working days (调休上班) the State Council announces each year, as maintained by the
`holidays` library (its China calendar lists both), never a table of our own."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache

import holidays

YELLOW_DAYS = 2  # a case this close to its limit shows yellow on the workbench


@cache
def _calendar() -> holidays.HolidayBase:
    return holidays.country_holidays("CN")


def is_working_day(day: date) -> bool:
    return bool(_calendar().is_working_day(day))


def add_working_days(start: date, days: int) -> date:
    """The day the limit falls on: `days` working days after `start` (the day of acceptance
    does not count, 《行政许可法》第八十二条 counts working days from the day after). With
    0 days (即办) it is `start` itself."""
    if days <= 0:
        return start
    return _calendar().get_nth_working_day(start, days)


@lru_cache(maxsize=65_536)  # pages ask for the same few dates again and again
def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end` (negative if `end` is earlier)."""
    if end == start:
        return 0
    if end < start:
        return -working_days_between(end, start)
    return int(_calendar().get_working_days_count(start + timedelta(days=1), end))


def clock(due_on: date | None, today: date) -> str:
    """How a case's time limit stands: green, yellow (≤ 2 working days left), red (overdue)."""
    if due_on is None:
        return "green"
    left = working_days_between(today, due_on)
    if left < 0:
        return "red"
    return "yellow" if left <= YELLOW_DAYS else "green"


def beijing_today(now: datetime | None = None) -> date:
    """Today in Beijing: the calendar a case's clock runs on."""
    return ((now or datetime.now(UTC)) + timedelta(hours=8)).date()
