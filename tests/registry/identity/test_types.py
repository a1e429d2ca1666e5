"""Every identity type of SPC Art. 6 (registry.identity.types): each validated by its own
rule, normalised, indexed with its type bound in, and masked for the public so that at least
100,000 candidates remain (issue 15 #1). Pure functions, no server."""

from __future__ import annotations

import calendar
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.identity.identifiers import (
    RESIDENCE_PERMIT_DIVISIONS,
    IdentifierError,
    division_codes,
    id_check_character,
    known_division,
)
from registry.identity.types import (
    ID_TYPES,
    index_input,
    organization_code_check,
    parse_organization,
    parse_organization_code,
    parse_person,
    parse_subject,
    public_identifier,
)

RESIDENT = "11010519491231002X"


def _fpr_new(province: str = "11", country: str = "156", birth: str = "19800101", seq: str = "001") -> str:
    body = f"9{province}{country}{birth}{seq}"
    return body + id_check_character(body)


# ---- persons ----


@pytest.mark.parametrize(
    ("id_type", "raw", "number"),
    [
        ("resident_id", " 11010519491231002x ", RESIDENT),
        ("hk_macao_travel_permit", "h1234567 8", "H12345678"),
        ("hk_macao_travel_permit", "M1234567890", "M1234567890"),
        ("taiwan_travel_permit", "１２３４５６７８", "12345678"),
        ("foreign_permanent_residence", "usa110801011234", "USA110801011234"),
        ("foreign_permanent_residence", _fpr_new(), _fpr_new()),
    ],
)
def test_each_person_type_is_validated_and_normalised(id_type: str, raw: str, number: str) -> None:
    identity = parse_person(id_type, raw)
    assert (identity.id_type, identity.number, identity.kind) == (id_type, number, "person")


def test_a_passport_needs_an_iso_3166_alpha_3_nationality() -> None:
    identity = parse_person("passport", "e 1234567", "can")
    assert identity.number == "CAN:E1234567"
    assert identity.fields() == {"id_type": "passport", "id_number": "E1234567", "nationality": "CAN"}
    for nationality in (None, "CA", "XYZ", "ＣＡＮＸ"):
        with pytest.raises(IdentifierError) as refused:
            parse_person("passport", "E1234567", nationality)
        assert refused.value.code == "invalid_nationality"
    with pytest.raises(IdentifierError):
        parse_person("resident_id", RESIDENT, "CHN")  # nationality only with a passport


@pytest.mark.parametrize(
    ("id_type", "raw"),
    [
        ("hk_macao_travel_permit", "X12345678"),
        ("hk_macao_travel_permit", "H123456789"),  # 9 digits
        ("hk_macao_travel_permit", "H1234567\u0661"),
        ("taiwan_travel_permit", "1234567"),
        ("taiwan_travel_permit", "1234567\u1369"),
        ("foreign_permanent_residence", "ZZZ110801011234"),  # no such country
        ("foreign_permanent_residence", "USA110813011234"),  # month 13
        ("foreign_permanent_residence", _fpr_new()[:-1] + ("0" if _fpr_new()[-1] != "0" else "1")),
        ("foreign_permanent_residence", _fpr_new(province="99")),
        ("foreign_permanent_residence", _fpr_new(birth="19801301")),
        ("passport", "E12"),
    ],
)
def test_malformed_person_numbers_are_refused(id_type: str, raw: str) -> None:
    with pytest.raises(IdentifierError) as refused:
        parse_person(id_type, raw, "CAN" if id_type == "passport" else None)
    assert refused.value.code == "invalid_id_number"


def test_an_unknown_id_type_is_refused() -> None:
    with pytest.raises(IdentifierError) as refused:
        parse_person("driving_licence", RESIDENT)
    assert refused.value.code == "unknown_id_type"


def test_foreign_permanent_residence_cards_carry_a_birth_date() -> None:
    assert parse_person("foreign_permanent_residence", _fpr_new(birth="19750615")).birth_date == date(
        1975, 6, 15
    )
    # Old format YYMMDD: the latest century in which the holder is of age.
    assert parse_person("foreign_permanent_residence", "USA110801011234").birth_date == date(2008, 1, 1) or (
        parse_person("foreign_permanent_residence", "USA110801011234").birth_date == date(1908, 1, 1)
    )
    assert parse_person("foreign_permanent_residence", "USA116506011234").birth_date == date(1965, 6, 1)


# ---- organisations ----


def test_organization_codes_follow_gb_11714() -> None:
    assert organization_code_check("60003734") == "1"  # DOMAIN.md: 60003734-1
    assert parse_organization_code("60003734-1") == "600037341"
    assert parse_organization_code(" 6000 3734 1 ") == "600037341"
    for bad in ("60003734-2", "6000373-1", "60003734\u0661", "600037341X"):
        with pytest.raises(IdentifierError) as refused:
            parse_organization_code(bad)
        assert refused.value.code == "invalid_organization_code"


@given(st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=8))
def test_every_organization_code_with_its_check_is_accepted_and_any_other_check_refused(body: str) -> None:
    check = organization_code_check(body)
    assert parse_organization_code(body + check) == body + check
    for other in "0123456789X":
        if other != check:
            with pytest.raises(IdentifierError):
                parse_organization_code(body + other)


def test_a_credit_code_embeds_an_organization_code_with_a_valid_check() -> None:
    # GB 32100: characters 9-17 of a credit code are the GB 11714 code, itself checked.
    assert parse_organization_code("91110000600037341L"[8:17]) == "600037341"


def test_an_organisation_gives_exactly_one_identifier() -> None:
    assert parse_organization(credit_code="91110000600037341L").id_type == "credit_code"
    registration = parse_organization(registration=("gbr", "sc 123456"))
    assert (registration.id_type, registration.number) == ("registration", "GBR:SC123456")
    assert registration.fields() == {"registration": {"country": "GBR", "number": "SC123456"}}
    with pytest.raises(IdentifierError) as refused:
        parse_organization(credit_code="91110000600037341L", organization_code="60003734-1")
    assert refused.value.code == "organization_identifier"
    with pytest.raises(IdentifierError):
        parse_organization()
    with pytest.raises(IdentifierError) as country:
        parse_organization(registration=("UK", "123"))
    assert country.value.code == "invalid_registration_country"


def test_a_subject_names_exactly_one_identifier() -> None:
    assert parse_subject(id_number=RESIDENT).id_type == "resident_id"
    with pytest.raises(IdentifierError) as refused:
        parse_subject(id_number=RESIDENT, credit_code="91110000600037341L")
    assert refused.value.code == "subject_identifier"
    with pytest.raises(IdentifierError):
        parse_subject(id_number=None, id_type="passport", credit_code="91110000600037341L")


# ---- the blind index input binds the type ----


def test_equal_numbers_of_different_types_never_share_an_index_input() -> None:
    inputs = {index_input(t, "12345678") for t in ID_TYPES}
    assert len(inputs) == len(ID_TYPES)
    assert index_input("resident_id", RESIDENT) == RESIDENT  # unchanged: persons' indexes stay valid
    # Every other type's input starts with its type and a colon; a resident ID number never
    # holds a colon, so no two (type, number) pairs share an input.
    assert all(index_input(t, "X").startswith(f"{t}:") for t in ID_TYPES if t != "resident_id")


# ---- the public mask (issue 15 #1) ----


def _candidates(masked: str, sex: str, age_at_publication: int, published: date) -> int:
    """Resident ID numbers consistent with every public field of a person: the mask, the sex
    and the age at publication (the publication year minus the birth year). The check
    character is determined by the rest, so each (division, day, sequence) is one number."""
    year = published.year - age_at_publication
    assert masked[6:10] == str(year)  # the age says nothing the mask does not
    codes = set(division_codes()) | RESIDENCE_PERMIT_DIVISIONS
    divisions = sum(1 for code in codes if code.startswith(masked[:2]) and known_division(code))
    days = 366 if calendar.isleap(year) else 365
    sequences = 500  # odd for men, even for women
    return divisions * days * sequences


@pytest.mark.parametrize(
    "number",
    [RESIDENT, "810000198001010010", "830000196206151236", "820000200001010021", "460000197001010010"],
)
def test_at_least_100000_candidates_remain_given_every_public_field(number: str) -> None:
    number = number[:17] + id_check_character(number[:17])
    person = parse_person("resident_id", number)
    masked = public_identifier("resident_id", person.number)
    published = date(2026, 12, 5)
    assert masked[2:6] == "****" and masked[10:] == "*" * 8
    assert _candidates(masked, str(person.sex), published.year - person.birth_date.year, published) >= 100_000


@pytest.mark.parametrize(
    ("id_type", "raw", "nationality", "masked"),
    [
        ("hk_macao_travel_permit", "H12345678", None, "H********"),
        ("taiwan_travel_permit", "12345678", None, "********"),
        ("foreign_permanent_residence", "USA110801011234", None, "USA************"),
        ("passport", "E1234567", "CAN", "CAN *********"),
    ],
)
def test_other_persons_numbers_show_nothing_of_their_digits(
    id_type: str, raw: str, nationality: str | None, masked: str
) -> None:
    assert parse_person(id_type, raw, nationality).masked == masked


def test_organisations_codes_are_shown_in_full() -> None:
    assert parse_organization(organization_code="600037341").masked == "60003734-1"
    assert parse_organization(registration=("GBR", "SC123456")).masked == "GBR SC123456"
