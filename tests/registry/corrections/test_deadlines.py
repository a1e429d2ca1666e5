"""The procedure's deadlines on China's calendar, across National Day 2026 and Spring
Festival 2026 (State Council notice: 2026-02-15 to 02-23 off, Saturday 02-14 and 02-28
worked; 2026-10-01 to 10-07 off, Sunday 09-20 and Saturday 10-10 worked)."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from registry.calendar import last_covered_year
from registry.corrections.deadlines import (
    correction_deadline,
    period_end,
    reconsideration_deadline,
    reconsideration_window,
    review_deadline,
)


@pytest.mark.parametrize(
    ("decided", "due"),
    [
        # Three working days from the eve of National Day: 10-08, 10-09 and the worked Saturday 10-10.
        (date(2026, 9, 30), date(2026, 10, 10)),
        # From Monday 09-28: 09-29, 09-30 and, past the holiday, 10-08.
        (date(2026, 9, 28), date(2026, 10, 8)),
        # The worked Sunday 09-20 is a working day; counted from the Saturday before it.
        (date(2026, 9, 19), date(2026, 9, 22)),
        # Spring Festival: from Friday 02-13, the worked Saturday 02-14, then 02-24 and 02-25.
        (date(2026, 2, 13), date(2026, 2, 25)),
        # An ordinary week: Friday to Wednesday.
        (date(2026, 3, 6), date(2026, 3, 11)),
    ],
)
def test_corrections_are_due_on_the_third_working_day(decided: date, due: date) -> None:
    assert correction_deadline(decided).due == due


@pytest.mark.parametrize(
    ("filed", "due"),
    [
        # Fifteen days from 09-20 end on 10-05, inside the holiday: the period runs to 10-08.
        (date(2026, 9, 20), date(2026, 10, 8)),
        # Fifteen days from 02-04 end on 02-19 (Spring Festival): moved to 02-24.
        (date(2026, 2, 4), date(2026, 2, 24)),
        # Ending on the worked Saturday 02-28: that day stands.
        (date(2026, 2, 13), date(2026, 2, 28)),
        # Ending on an ordinary Sunday: moved to Monday.
        (date(2026, 3, 7), date(2026, 3, 23)),
        # Ending on a Wednesday: as is (the filing day does not count).
        (date(2026, 3, 3), date(2026, 3, 18)),
    ],
)
def test_review_takes_fifteen_days_ending_on_a_working_day(filed: date, due: date) -> None:
    assert review_deadline(filed).due == due
    assert reconsideration_deadline(filed).due == due


def test_the_reconsideration_window_is_ten_days() -> None:
    # 09-25 + 10 = 10-05, in the holiday: open until 10-08.
    assert reconsideration_window(date(2026, 9, 25)).due == date(2026, 10, 8)
    # 03-02 + 10 = 03-12, a Thursday.
    assert reconsideration_window(date(2026, 3, 2)).due == date(2026, 3, 12)


def test_a_year_the_calendar_does_not_cover_is_provisional() -> None:
    beyond = date(last_covered_year() + 1, 6, 1)
    assert period_end(beyond, 15).provisional
    assert not period_end(date(2026, 3, 3), 15).provisional


def test_a_period_ending_beyond_the_calendar_is_logged_once_as_removals_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    last = last_covered_year()
    # Fifteen days from 20 December end in the next year, whose holidays are not known yet.
    with caplog.at_level(logging.WARNING, logger="registry.calendar"):
        deadline = review_deadline(date(last, 12, 20))
    assert deadline.provisional and deadline.due.year == last + 1
    [line] = caplog.records
    assert deadline.due.isoformat() in line.getMessage() and "upgrade" in line.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="registry.calendar"):
        assert not review_deadline(date(last, 12, 1)).provisional
    assert caplog.records == []
