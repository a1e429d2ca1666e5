"""Identifier rules as properties (GB 11643 ID numbers, GB 32100 credit codes, case numbers,
the public mask): whatever valid number a court sends is accepted with what it encodes, and
any one-character slip is refused. Pure functions, no server."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.cn import uscc

from registry.identity.identifiers import (
    COURT_ABBREVIATIONS,
    ENFORCEMENT_TYPES,
    IdentifierError,
    normalise_case_number,
    normalise_court_code,
    parse_case_number,
    parse_credit_code,
    parse_id_number,
)
from registry.identity.types import public_identifier

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
ID_CHARACTERS = "0123456789X"
# County codes that GB/T 2260 (as python-stdnum ships it) has had since before 1930 and still has.
DIVISIONS = ("110101", "110102", "110105", "110108", "120101", "120103", "310101", "310104")
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def id_check(body17: str) -> str:
    """The check character, from the DOMAIN.md formula (independent of python-stdnum)."""
    return ID_CHECK[sum(int(d) * w for d, w in zip(body17, ID_WEIGHTS, strict=True)) % 11]


def uscc_check(body17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_check(body8: str) -> str:
    """GB 11714, from its formula: digits keep their value, letters count from A = 10."""
    value = 11 - sum(int(c, 36) * w for c, w in zip(body8, ORG_WEIGHTS, strict=True)) % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


@st.composite
def id_numbers(draw: st.DrawFn) -> tuple[str, date, int]:
    """A valid 18-character ID number, with the birth date and sequence it encodes."""
    division = draw(st.sampled_from(DIVISIONS))
    birth = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2020, 12, 31)))
    sequence = draw(st.integers(min_value=0, max_value=999))
    body = f"{division}{birth:%Y%m%d}{sequence:03d}"
    return body + id_check(body), birth, sequence


@st.composite
def credit_codes(draw: st.DrawFn) -> str:
    """A valid unified social credit code: authority and type (GB 32100's alphabet: letters
    too, N agriculture, Y other), a six-digit division code, an organisation code of eight
    characters and its GB 11714 check, the check."""
    head = draw(st.text(USCC_ALPHABET, min_size=2, max_size=2))
    division = draw(st.sampled_from(DIVISIONS))
    organisation = draw(st.text(USCC_ALPHABET, min_size=8, max_size=8))
    body = head + division + organisation + org_check(organisation)
    return body + uscc_check(body)


# ---- resident ID numbers (GB 11643) ----


@given(id_numbers())
def test_a_valid_id_number_is_accepted_with_its_birth_date_and_sex(drawn: tuple[str, date, int]) -> None:
    number, birth, sequence = drawn
    person = parse_id_number(number)
    assert person.number == number
    assert person.birth_date == birth
    assert person.sex == ("M" if sequence % 2 else "F")


@given(id_numbers(), st.integers(min_value=0, max_value=17), st.sampled_from(ID_CHARACTERS))
def test_any_single_character_changed_is_refused(
    drawn: tuple[str, date, int], position: int, replacement: str
) -> None:
    number = drawn[0]
    if number[position] == replacement:
        replacement = ID_CHARACTERS[(ID_CHARACTERS.index(replacement) + 1) % len(ID_CHARACTERS)]
    typo = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(IdentifierError) as refused:
        parse_id_number(typo)
    assert refused.value.code == "invalid_id_number"


@given(id_numbers(), st.integers(min_value=0, max_value=15))
def test_two_adjacent_digits_swapped_are_refused(drawn: tuple[str, date, int], position: int) -> None:
    number = drawn[0]
    if number[position] == number[position + 1]:
        return  # swapping equal digits changes nothing
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2 :]
    with pytest.raises(IdentifierError):
        parse_id_number(swapped)


@given(id_numbers())
def test_a_number_typed_with_spaces_a_lower_case_x_or_full_width_digits_is_the_same_number(
    drawn: tuple[str, date, int],
) -> None:
    number = drawn[0]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in number)
    spaced = f" {number[:6]} {number[6:14]} {number[14:].lower()} "
    assert parse_id_number(full_width).number == number
    assert parse_id_number(spaced).number == number


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "11010519491231002",  # 17 characters
        "11010519491231002X1",  # 19 characters
        "110105194912310X2X",  # X inside the number
        "110105194913010026",  # month 13 (check character recomputed below)
    ],
)
def test_malformed_id_numbers_are_refused(raw: str) -> None:
    if len(raw) == 18 and raw[:17].isdigit():
        raw = raw[:17] + id_check(raw[:17])
    with pytest.raises(IdentifierError) as refused:
        parse_id_number(raw)
    assert refused.value.code == "invalid_id_number"


# ---- unified social credit codes (GB 32100) ----


@given(credit_codes())
def test_a_valid_credit_code_is_accepted_in_upper_case(code: str) -> None:
    assert parse_credit_code(code) == code
    assert parse_credit_code(f" {code.lower()} ") == code


@given(credit_codes(), st.integers(min_value=0, max_value=17), st.sampled_from(USCC_ALPHABET))
def test_any_single_character_of_a_credit_code_changed_is_refused(
    code: str, position: int, replacement: str
) -> None:
    if code[position] == replacement:
        replacement = USCC_ALPHABET[(USCC_ALPHABET.index(replacement) + 1) % len(USCC_ALPHABET)]
    typo = code[:position] + replacement + code[position + 1 :]
    with pytest.raises(IdentifierError) as refused:
        parse_credit_code(typo)
    assert refused.value.code == "invalid_credit_code"


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_letters_outside_the_gb32100_alphabet_are_refused_whatever_the_check(letter: str) -> None:
    body = "91110000" + letter + "00037341"
    for check in USCC_ALPHABET:
        with pytest.raises(IdentifierError):
            parse_credit_code(body + check)


# ---- the public mask ----


@given(id_numbers())
def test_the_mask_keeps_the_province_and_birth_year_and_nothing_else(drawn: tuple[str, date, int]) -> None:
    number = drawn[0]
    masked = public_identifier("resident_id", number)
    assert len(masked) == 18
    assert masked == number[:2] + "****" + number[6:10] + "********"  # province, birth year


@given(credit_codes())
def test_credit_codes_are_public_registration_data_shown_in_full(code: str) -> None:
    assert public_identifier("credit_code", code) == code


# ---- case numbers and court codes ----


@st.composite
def case_numbers(draw: st.DrawFn) -> tuple[str, int, str, str, int]:
    """（year）court-code type sequence号: a high (no digits), intermediate (2) or basic (4) court."""
    year = draw(st.integers(min_value=2016, max_value=2030))
    digits = draw(st.sampled_from([0, 2, 4]))
    number = draw(st.integers(min_value=1, max_value=10**digits - 1)) if digits else 0
    court = draw(st.sampled_from(sorted(COURT_ABBREVIATIONS))) + (f"{number:0{digits}d}" if digits else "")
    kind = draw(st.sampled_from(ENFORCEMENT_TYPES))
    sequence = draw(st.integers(min_value=1, max_value=9_999_999))
    return f"（{year}）{court}{kind}{sequence}号", year, court, kind, sequence


@given(case_numbers())
def test_a_case_number_parses_into_its_parts_whatever_the_brackets(
    drawn: tuple[str, int, str, str, int],
) -> None:
    text, year, court, kind, sequence = drawn
    ascii_brackets = text.replace("（", "(").replace("）", ")")
    for written in (text, ascii_brackets, f" {ascii_brackets} "):
        case = parse_case_number(written)
        assert case.text == text  # the courts' display form: full-width brackets
        assert (case.year, case.court_code, case.case_type, case.sequence) == (year, court, kind, sequence)


@pytest.mark.parametrize(
    "raw",
    [
        "（2024）京0105民初12号",  # a civil case, not enforcement
        "（2024）京0105执号",  # no sequence
        "（2024）京0105执12345678号",  # eight-digit sequence
        "（24）京0105执12号",  # two-digit year
    ],
)
def test_case_numbers_that_are_not_of_the_2016_enforcement_form_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError) as refused:
        parse_case_number(raw)
    assert refused.value.code == "invalid_case_number"


@pytest.mark.parametrize(
    ("raw", "code"), [("京0105", "京0105"), (" 京 01 ", "京01"), ("最高法", "最高法"), ("沪", "沪")]
)
def test_court_codes_are_normalised(raw: str, code: str) -> None:
    assert normalise_court_code(raw) == code


@pytest.mark.parametrize("raw", ["", "京010", "京01051", "X0105", "北京0105", "0105"])
def test_malformed_court_codes_are_refused(raw: str) -> None:
    with pytest.raises(IdentifierError) as refused:
        normalise_court_code(raw)
    assert refused.value.code == "invalid_court_code"


# ---- division codes are never tied to the birth year (DOMAIN.md) ----


def test_a_division_code_created_after_the_birth_year_is_accepted() -> None:
    body = "31011519800101001"
    assert parse_id_number(body + id_check(body)).birth_date == date(1980, 1, 1)


def test_a_hong_kong_residence_permit_of_someone_born_before_1997_is_accepted() -> None:
    body = "81000019800101001"
    assert parse_id_number(body + id_check(body)).number.startswith("810000")


@pytest.mark.parametrize(
    ("division", "year"),
    [
        ("310115", 1980),
        ("330106", 1965),
        ("440303", 1975),
        ("820000", 1950),
        ("830000", 1962),
        ("110105", 2007),
        ("330113", 1990),  # 临平区, 2021: missing from stdnum's table
        ("330114", 1960),  # 钱塘区, 2021
    ],
)
def test_codes_of_every_era_and_the_residence_permit_codes_pass_for_any_birth_year(
    division: str, year: int
) -> None:
    body = f"{division}{year}0615123"
    assert parse_id_number(body + id_check(body)).birth_date == date(year, 6, 15)


@pytest.mark.parametrize("division", ["000000", "999999", "110199", "840000"])
def test_a_division_code_that_never_existed_is_refused(division: str) -> None:
    body = f"{division}19800101001"
    with pytest.raises(IdentifierError) as refused:
        parse_id_number(body + id_check(body))
    assert refused.value.code == "invalid_id_number"


def test_a_birth_date_in_the_future_is_refused() -> None:
    body = "11010521000101001"
    with pytest.raises(IdentifierError):
        parse_id_number(body + id_check(body))


@given(id_numbers())
def test_an_old_15_digit_number_is_the_same_person_as_its_18_digit_form(drawn: tuple[str, date, int]) -> None:
    number, birth, _sequence = drawn
    if birth.year // 100 != 19:
        return  # 15-digit numbers were issued to people born in the 1900s
    old = number[:6] + number[8:17]
    assert len(old) == 15
    assert parse_id_number(old).number == number
    assert parse_id_number(old).birth_date == birth


def test_a_15_digit_number_with_an_impossible_date_is_refused() -> None:
    with pytest.raises(IdentifierError):
        parse_id_number("110105491331002")


# ---- fast paths agree with the reference (stdnum, NFKC) ----

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _reference_credit_code(code: str) -> str:
    """DOMAIN.md's rule, written out: "form", "checksum", "organisation", or the code."""
    code = code.replace(" ", "").replace("-", "")
    if (
        len(code) != 18
        or any(char not in USCC_ALPHABET for char in code)
        or any(char not in "0123456789" for char in code[2:8])
    ):
        return "form"
    if code[17] != uscc_check(code[:17]):
        return "checksum"
    if code[16] != org_check(code[8:16]):
        return "organisation"
    return code


@given(
    st.text(alphabet=USCC_ALPHABET + "IOSVZ", min_size=2, max_size=2),
    st.text(alphabet="0123456789A", min_size=6, max_size=6),
    st.text(alphabet=USCC_ALPHABET + "IOSVZ- ", min_size=9, max_size=11),
    st.booleans(),
    st.booleans(),
)
def test_credit_code_check_agrees_with_the_standard(
    head: str, division: str, tail: str, fix_organisation: bool, fix_check: bool
) -> None:
    code = head + division + tail
    if fix_organisation and len(code) >= 17 and all(char in USCC_ALPHABET for char in code[8:16]):
        code = code[:16] + org_check(code[8:16]) + code[17:]
    if fix_check and len(code) == 18 and all(char in USCC_ALPHABET for char in code):
        code = code[:17] + uscc_check(code[:17])
    expected = _reference_credit_code(code)
    try:
        got = parse_credit_code(code)
    except IdentifierError as exc:
        assert exc.code == "invalid_credit_code"
        if expected == "checksum":
            assert "check character is wrong" in exc.message, code
        elif expected == "organisation":
            assert "organisation code" in exc.message and "GB 11714" in exc.message, code
        else:
            assert expected == "form", (code, exc.message)
    else:
        assert got == expected


@given(st.text(alphabet="0123456789", min_size=8, max_size=8), st.text(USCC_ALPHABET, min_size=8, max_size=8))
def test_every_code_stdnum_accepts_whose_organisation_code_checks_is_accepted(
    head: str, organisation: str
) -> None:
    body = head + organisation + org_check(organisation)
    code = body + uscc.calc_check_digit(body)
    assert uscc.validate(code) == code
    assert parse_credit_code(code) == code


@pytest.mark.parametrize("head", ["N2", "Y1", "A1", "51", "91"])
def test_authority_and_type_may_be_letters_of_the_alphabet(head: str) -> None:
    """GB 32100: the first two characters come from the whole alphabet (N agriculture, Y
    other); python-stdnum refuses them, the registry answered invalid_credit_code."""
    body = head + "110105" + "MA01C9XK" + org_check("MA01C9XK")
    code = body + uscc_check(body)
    assert parse_credit_code(code) == code


def test_the_organisation_code_inside_a_credit_code_is_checked() -> None:
    # 60003734-9 fails GB 11714 (its check is 1); the credit code's own check is right.
    with pytest.raises(IdentifierError) as refused:
        parse_credit_code("91110000600037349D")
    assert refused.value.code == "invalid_credit_code"
    assert "characters 9-17" in refused.value.message
    assert parse_credit_code("91110000600037341L") == "91110000600037341L"


@given(st.text(alphabet="（）() 0123456789０１京执恢号字第⑵\u3000", max_size=24))
def test_case_number_normalisation_equals_nfkc_then_display_brackets(text: str) -> None:
    reference = "".join(unicodedata.normalize("NFKC", text).split()).replace("(", "（").replace(")", "）")
    assert normalise_case_number(text) == reference
