"""Calendar arithmetic behind fixed terms (SPC Art. 2) and the creditor's six-month bar (Art. 10)."""

from __future__ import annotations

from datetime import date

import pytest

from registry.listings.prepare import add_months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 3, 1), 24, date(2026, 3, 1)),  # a two-year term ends on the same day
        (date(2024, 2, 29), 24, date(2026, 2, 28)),  # no 29 February in 2026
        (date(2024, 8, 31), 6, date(2025, 2, 28)),  # six months from the 31st
        (date(2024, 12, 15), 1, date(2025, 1, 15)),  # across the year end
        (date(2023, 3, 31), -1, date(2023, 2, 28)),
    ],
)
def test_months_are_calendar_months(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected
