"""Identifiers, canonical JSON, encryption at rest, ids: the pieces every listing passes through."""

from __future__ import annotations

import os
from datetime import date

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric
from ulid import ULID

from registry.identity.canonical import CanonicalizationError, canonical_json
from registry.identity.crypto import BlindIndex, DataKeyError, DataKeyring
from registry.identity.identifiers import (
    IdentifierError,
    age_on,
    normalise_case_number,
    parse_case_number,
    parse_credit_code,
    parse_id_number,
    province_of_court,
)
from registry.identity.types import public_identifier
from registry.ids import new_id

# ---- canonical JSON: our fast path must give rfc8785's bytes, or defer to it ----

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    st.text(),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=600, deadline=None)
@given(json_values)
def test_canonical_json_equals_the_reference_implementation(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except Exception:
        with pytest.raises(CanonicalizationError):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_canonical_json_sorts_keys_by_utf16_code_units_like_jcs() -> None:
    # U+1F600 (a surrogate pair in UTF-16) sorts before U+FF21 under JCS, after it by code point.
    value = {"\uff21": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index("\uff21".encode())


def test_integers_beyond_ieee_double_precision_have_no_canonical_form() -> None:
    with pytest.raises(CanonicalizationError):
        canonical_json({"amount_cents": 2**60})


# ---- identifiers ----


def test_resident_id_yields_birth_date_and_sex() -> None:
    person = parse_id_number(" 11010519491231002x ")
    assert person.number == "11010519491231002X"
    assert person.birth_date == date(1949, 12, 31)
    assert person.sex == "F"  # the 17th digit, 2, is even


def test_full_width_id_digits_are_normalised_before_validation() -> None:
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ").number == "11010519491231002X"


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002Y",  # wrong check character
        "1101051949123100",  # too short
        "11010519A9123100 2X",  # a letter in the body
    ],
)
def test_malformed_resident_ids_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_id_number(raw)
    assert caught.value.code == "invalid_id_number"


def _with_check(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


def test_impossible_birth_date_is_refused_even_with_a_valid_checksum() -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_id_number(_with_check("11010519490230002"))  # 30 February
    assert "birth date" in caught.value.message


def test_unknown_division_code_is_refused_even_with_a_valid_checksum() -> None:
    with pytest.raises(IdentifierError):
        parse_id_number(_with_check("99990019800101001"))


def test_division_code_is_never_tied_to_the_birth_year() -> None:
    # 110115 (Daxing district) exists in stdnum's table from 2001 on, 110224 (Daxing county) before;
    # a Daxing resident born in 1980 whose number was assigned after 2001 holds 110115.
    assert parse_id_number(_with_check("11011520050101001")).birth_date.year == 2005
    assert parse_id_number(_with_check("11011519800101001")).birth_date.year == 1980


def test_credit_codes_are_checked_and_normalised() -> None:
    assert parse_credit_code("91110000600037341l") == "91110000600037341L"
    with pytest.raises(IdentifierError) as caught:
        parse_credit_code("91110000600037341M")
    assert caught.value.code == "invalid_credit_code"


def test_public_mask_keeps_only_the_province_and_birth_year() -> None:
    # The national site shows 3423011964****3224 (sequence and check kept: ~33 candidates).
    assert public_identifier("resident_id", "342301196405123224") == "34****1964********"


def test_age_counts_whole_years() -> None:
    birth = date(2008, 3, 15)
    assert age_on(birth, date(2026, 3, 14)) == 17
    assert age_on(birth, date(2026, 3, 15)) == 18


def test_case_numbers_are_normalised_to_the_courts_display_form() -> None:
    case = parse_case_number("(２０２４)京0105执恢１２号")
    assert case.text == "（2024）京0105执恢12号"
    assert (case.year, case.court_code, case.case_type, case.sequence) == (2024, "京0105", "执恢", 12)
    assert normalise_case_number(" （2019） 京0105 执1234号 ") == "（2019）京0105执1234号"


@pytest.mark.parametrize(
    "raw",
    [
        "（2024）京0105民初12号",  # not an enforcement case type
        "（2024）X0105执12号",  # not a court abbreviation
        "（2024）京010执12号",  # three digits
        "2024京0105执12号",  # no year brackets
    ],
)
def test_non_enforcement_or_malformed_case_numbers_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError) as caught:
        parse_case_number(raw)
    assert caught.value.code == "invalid_case_number"


def test_court_province_comes_from_the_abbreviation() -> None:
    assert province_of_court("京0105") == "11"
    assert province_of_court("黔01") == "52"
    assert province_of_court("兵0101") == "65"
    assert province_of_court("最高法") is None


# ---- encryption at rest ----


def test_ciphertexts_decrypt_only_for_their_purpose_and_survive_key_rotation() -> None:
    old = DataKeyring({"k1": os.urandom(32)}, "k1")
    blob = old.encrypt(b"11010519491231002X", b"listing.debtor_id")
    assert old.decrypt(blob, b"listing.debtor_id") == b"11010519491231002X"
    with pytest.raises(DataKeyError):
        old.decrypt(blob, b"listing.signed")  # moved to another column: refused
    rotated = DataKeyring(old.raw_keys() | {"k2": os.urandom(32)}, "k2")
    assert rotated.decrypt(blob, b"listing.debtor_id") == b"11010519491231002X"
    fresh = rotated.encrypt(b"x", b"p")
    assert DataKeyring.key_id_of(fresh) == "k2" and DataKeyring.key_id_of(blob) == "k1"
    with pytest.raises(DataKeyError):
        old.decrypt(fresh, b"p")  # k2 unknown to the old ring


def test_tampered_ciphertext_is_refused() -> None:
    ring = DataKeyring({"k1": os.urandom(32)}, "k1")
    blob = bytearray(ring.encrypt(b"secret", b"p"))
    blob[-1] ^= 1
    with pytest.raises(DataKeyError):
        ring.decrypt(bytes(blob), b"p")


def test_blind_index_is_keyed_and_deterministic() -> None:
    first, second = BlindIndex(os.urandom(32)), BlindIndex(os.urandom(32))
    assert first("11010519491231002X") == first("11010519491231002X")
    assert first("11010519491231002X") != second("11010519491231002X")


# ---- ids ----


def test_ids_are_ulids_in_creation_order() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:50]:
        assert str(ULID.from_str(value)) == value  # the reference parser round-trips it
    stamps = [ULID.from_str(value).milliseconds for value in ids]
    assert stamps == sorted(stamps)
