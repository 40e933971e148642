"""Working days on the Chinese calendar, from the maintained `holidays` data."""

from __future__ import annotations

from datetime import date

from qilu.workdays import add_working_days, clock, is_working_day, working_days_between


def test_national_day_week_is_skipped_and_the_make_up_saturday_counts() -> None:
    assert not is_working_day(date(2026, 10, 5))
    assert is_working_day(date(2026, 10, 10))  # 调休上班 (a Saturday)
    assert add_working_days(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert add_working_days(date(2026, 10, 9), 1) == date(2026, 10, 10)


def test_spring_festival_2026() -> None:
    assert add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)  # make-up Saturday
    assert add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)


def test_zero_days_is_the_same_day_and_counting_is_symmetric() -> None:
    assert add_working_days(date(2026, 11, 27), 0) == date(2026, 11, 27)
    assert working_days_between(date(2026, 11, 27), date(2026, 12, 4)) == 5
    assert working_days_between(date(2026, 12, 4), date(2026, 11, 27)) == -5


def test_clock_colours() -> None:
    today = date(2026, 11, 30)  # a Monday
    assert clock(date(2026, 12, 11), today) == "green"
    assert clock(date(2026, 12, 2), today) == "yellow"
    assert clock(date(2026, 11, 27), today) == "red"
    assert clock(None, today) == "green"
