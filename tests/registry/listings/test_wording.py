"""The words people read for a passport's or a foreign registration's country."""

from __future__ import annotations

import iso3166
import pytest

from registry.listings.wording import country_name, identifier_text


def test_every_country_a_listing_may_name_has_a_chinese_name() -> None:
    """Every code the identity parser accepts (iso3166) is shown in words, none as its code."""
    unnamed = [code for code in iso3166.countries_by_alpha3 if country_name(code) == code]
    assert unnamed == []


@pytest.mark.parametrize(
    ("id_type", "shown", "words"),
    [
        ("passport", "CAN *********", "加拿大 *********"),
        ("passport", "KOR:X7654321", "大韩民国 X7654321"),
        ("registration", "GBR SC123456", "英国 SC123456"),
        # China's regions as Chinese official documents name them.
        ("registration", "HKG 1234567", "中国香港 1234567"),
        ("registration", "MAC 1234567", "中国澳门 1234567"),
        ("registration", "TWN 12345678", "中国台湾 12345678"),
        # Numbers that merely begin with letters are shown as they are.
        ("foreign_permanent_residence", "USA************", "USA************"),
        ("hk_macao_travel_permit", "H********", "H********"),
    ],
)
def test_a_country_code_before_a_number_is_shown_by_name(id_type: str, shown: str, words: str) -> None:
    assert identifier_text(id_type, shown) == words
