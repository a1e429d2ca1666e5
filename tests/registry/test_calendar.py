"""China's calendar: days start at midnight China time; deadlines count official working days."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from registry.calendar import (
    Deadline,
    add_working_days,
    china_date,
    china_midnight,
    covers,
    end_of_china_day,
    is_working_day,
    last_covered_year,
    seconds_to_next_china_day,
)
from registry.corrections.deadlines import review_deadline


def test_a_china_day_starts_at_16_00_utc_the_day_before() -> None:
    assert china_date(datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == date(2026, 3, 1)
    assert china_date(datetime(2026, 3, 1, 16, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert china_midnight(date(2026, 3, 2)) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_seconds_to_the_next_china_day_round_up_and_are_never_zero() -> None:
    assert seconds_to_next_china_day(datetime(2026, 3, 1, 15, 0, tzinfo=UTC)) == 3601
    assert seconds_to_next_china_day(datetime(2026, 3, 1, 15, 59, 59, 500_000, tzinfo=UTC)) == 1


def test_three_working_days_from_an_ordinary_friday_end_on_wednesday() -> None:
    # Civil Code Art. 201: the starting day does not count.
    assert add_working_days(date(2026, 3, 6), 3) == Deadline(date(2026, 3, 11), provisional=False)
    assert add_working_days(date(2026, 3, 6), 1) == Deadline(date(2026, 3, 9), provisional=False)
    assert add_working_days(date(2026, 3, 6), 0) == Deadline(date(2026, 3, 6), provisional=False)


def test_spring_festival_2026_skips_the_holiday_and_counts_the_adjusted_saturdays() -> None:
    # 2026 Spring Festival: 15-23 February off; Saturdays 14 and 28 February are worked (调休).
    assert is_working_day(date(2026, 2, 14)) and is_working_day(date(2026, 2, 28))
    assert not is_working_day(date(2026, 2, 16)) and not is_working_day(date(2026, 2, 23))
    # From Friday 13 February: Sat 14 (worked), then nothing until Tue 24, Wed 25.
    assert add_working_days(date(2026, 2, 13), 3) == Deadline(date(2026, 2, 25), provisional=False)
    # From Thursday 26 February the worked Saturday 28 counts: Fri 27, Sat 28, Mon 2 March.
    assert add_working_days(date(2026, 2, 26), 3) == Deadline(date(2026, 3, 2), provisional=False)


def test_national_day_2026_moves_a_deadline_past_the_golden_week() -> None:
    # 1-7 October off; Sunday 20 September and Saturday 10 October are worked.
    assert is_working_day(date(2026, 9, 20)) and is_working_day(date(2026, 10, 10))
    # From Tuesday 29 September: Wed 30, then Thu 8 and Fri 9 October.
    assert add_working_days(date(2026, 9, 29), 3) == Deadline(date(2026, 10, 9), provisional=False)
    # From Thursday 8 October: Fri 9, the worked Saturday 10, Mon 12.
    assert add_working_days(date(2026, 10, 8), 3) == Deadline(date(2026, 10, 12), provisional=False)


def test_a_year_the_calendar_does_not_cover_is_counted_on_weekends_only_and_marked_provisional(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uncovered = last_covered_year() + 1
    assert covers(date(uncovered - 1, 12, 31)) and not covers(date(uncovered, 1, 1))
    # 2026-12-30 is a Wednesday: Thu 31 counts from the data; 2027 days Monday to Friday, but
    # for New Year's Day, a holiday every year: Mon 4, Tue 5.
    with caplog.at_level(logging.WARNING, logger="registry.calendar"):
        deadline = add_working_days(date(2026, 12, 30), 3)
    assert deadline == Deadline(date(2027, 1, 5), provisional=True)
    assert "2027-01-05" in caplog.text and "upgrade" in caplog.text
    # A deadline wholly inside the covered data is not provisional and is not logged.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="registry.calendar"):
        assert add_working_days(date(2026, 12, 28), 2).provisional is False
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2030, 1, 1), False),  # 元旦, a Tuesday
        (date(2030, 5, 1), False),  # 劳动节, a Wednesday
        (date(2030, 5, 2), False),
        (date(2030, 10, 3), False),  # 国庆节, a Thursday
        (date(2030, 4, 5), False),  # 清明, the solar term's day, a Friday
        (date(2030, 4, 4), True),
        (date(2030, 10, 4), True),  # the 调休 around it is not known before the announcement
        (date(2030, 1, 5), False),  # a Saturday
    ],
)
def test_a_year_not_covered_still_rests_on_the_holidays_whose_dates_are_fixed(
    day: date, working: bool
) -> None:
    assert not covers(day)
    assert is_working_day(day) is working


def test_a_review_period_ending_on_new_year_s_day_of_a_year_not_covered_ends_after_it() -> None:
    """Fifteen days from 17 December 2026 end on 1 January 2027: a holiday, so the court has
    until the next working day, Monday 4 January (Civil Code Art. 203)."""
    assert review_deadline(date(2026, 12, 17)).due == date(2027, 1, 4)


def test_a_deadline_day_ends_at_midnight_china_time() -> None:
    assert end_of_china_day(date(2026, 3, 11)) == datetime(2026, 3, 11, 16, 0, tzinfo=UTC)
