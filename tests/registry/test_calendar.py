"""China's calendar: days start at midnight China time, deadlines skip weekends."""

from __future__ import annotations

from datetime import UTC, date, datetime

from registry.calendar import add_working_days, china_date, china_midnight, seconds_to_next_china_day


def test_a_china_day_starts_at_16_00_utc_the_day_before() -> None:
    assert china_date(datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert china_date(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert china_midnight(date(2026, 3, 2)) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_seconds_to_the_next_china_day_round_up_and_are_never_zero() -> None:
    assert seconds_to_next_china_day(datetime(2026, 3, 1, 15, 0, tzinfo=UTC)) == 3601
    assert seconds_to_next_china_day(datetime(2026, 3, 1, 15, 59, 59, 500_000, tzinfo=UTC)) == 1


def test_working_days_skip_saturday_and_sunday() -> None:
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    assert add_working_days(friday, 1) == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    assert add_working_days(friday, 3) == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert add_working_days(friday, 0) == friday
