"""An old foreign permanent residence card (3 letters and 12 digits) gives its holder's birth
date as YYMMDD: the century is the latest that puts the birth on or before the day the number
is read for (a listing's date; today for a check or a search). The registry used to pick the
century in which the holder would be of age, so a minor born in 2010 read as born in 1910."""

from __future__ import annotations

from datetime import date

import pytest

from registry.identity.identifiers import IdentifierError
from registry.identity.types import identity_of, parse_person

KIND = "foreign_permanent_residence"


@pytest.mark.parametrize(
    ("number", "on", "born"),
    [
        ("USA111006151234", date(2026, 12, 8), date(2010, 6, 15)),  # a minor, not a man of 116
        ("USA110801011234", date(2026, 1, 1), date(2008, 1, 1)),  # the contract's example
        ("USA116506011234", date(2026, 12, 8), date(1965, 6, 1)),
        ("USA112603011234", date(2025, 6, 1), date(1926, 3, 1)),  # 2026-03-01 is after the day
        ("USA112603011234", date(2026, 3, 1), date(2026, 3, 1)),  # born that very day
        ("USA110002291234", date(2026, 12, 8), date(2000, 2, 29)),
    ],
)
def test_the_two_digit_year_is_read_in_the_latest_century_not_after_the_day(
    number: str, on: date, born: date
) -> None:
    assert parse_person(KIND, number, on=on).birth_date == born
    # A stored number reads back with the birth date it was listed with.
    assert identity_of(KIND, number, on=on).birth_date == born


def test_a_date_that_exists_in_no_such_century_is_refused() -> None:
    # 29 February 1925 never was; 2025-02-29 neither.
    with pytest.raises(IdentifierError) as refused:
        parse_person(KIND, "USA112502291234", on=date(2026, 12, 8))
    assert refused.value.code == "invalid_id_number"
