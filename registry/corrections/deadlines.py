"""The deadlines of the correction procedure, on China's calendar (`registry.calendar`).

- review: 15 days from filing (SPC Provisions Art. 11);
- reconsideration: asked within 10 days of the dismissal, decided within 15 days (Art. 12);
- correction: carried out within 3 working days of the decision or finding (Art. 9, 11).

Periods of days follow the Civil Code: the starting day does not count (Art. 201), and a
period whose last day is a statutory rest day ends on the first working day after it
(Art. 203; the Civil Procedure Law Art. 85 says the same), weekends made working days (调休)
being working days. A day in a year the calendar data does not cover is counted Monday to
Friday, marks the deadline provisional and is logged (`add_working_days`), as every other
deadline of the registry.
"""

from __future__ import annotations

from datetime import date, timedelta

from registry.calendar import Deadline, add_working_days

REVIEW_DAYS = 15
RECONSIDERATION_WINDOW_DAYS = 10
RECONSIDERATION_DAYS = 15
CORRECTION_WORKING_DAYS = 3


def period_end(start: date, days: int) -> Deadline:
    """The last day of a period of `days` days that starts after `start`, moved past rest days."""
    # The first working day from the period's last day on is the working day after the day
    # before it: counted by `add_working_days`, which also logs a provisional deadline.
    return add_working_days(start + timedelta(days=days - 1), 1)


def review_deadline(filed_on: date) -> Deadline:
    return period_end(filed_on, REVIEW_DAYS)


def reconsideration_window(dismissed_on: date) -> Deadline:
    return period_end(dismissed_on, RECONSIDERATION_WINDOW_DAYS)


def reconsideration_deadline(requested_on: date) -> Deadline:
    return period_end(requested_on, RECONSIDERATION_DAYS)


def correction_deadline(decided_on: date) -> Deadline:
    return add_working_days(decided_on, CORRECTION_WORKING_DAYS)
