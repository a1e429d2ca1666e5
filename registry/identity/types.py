"""Every kind of identity document a debtor can be listed under (SPC Provisions Art. 6).

Persons: `resident_id` (GB 11643, also the Hong Kong, Macao and Taiwan residents' residence
permits, codes 81/82/83), `hk_macao_travel_permit` (港澳居民来往内地通行证),
`taiwan_travel_permit` (台湾居民来往大陆通行证), `foreign_permanent_residence`
(外国人永久居留身份证, the 15-character and the 2023 18-character formats) and `passport`
(with the holder's nationality, ISO 3166-1 alpha-3). Organisations: `credit_code` (GB 32100),
`organization_code` (the legacy GB 11714 code) and `registration` (a foreign entity's home
registration: country and number).

Each is validated by its own rule, normalised, and turned into the one string the blind index
hashes (`Identity.index_input`): the type is bound into it, so that equal numbers of different
types never share an index. A resident ID number's input is the bare number (the form indexed
before other types existed): every other type's input starts with `type:`, and a resident ID
number (17 digits and a check character) can never start so, so the encoding stays
unambiguous and persons' existing indexes, check logs and watchlists stay valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import iso3166

from registry.identity.identifiers import (
    PROVINCES,
    IdentifierError,
    china_today,
    id_check_character,
    normalise_identifier,
    organization_code_check,
    parse_credit_code,
    parse_id_number,
)

PERSON_ID_TYPES = (
    "resident_id",
    "hk_macao_travel_permit",
    "taiwan_travel_permit",
    "foreign_permanent_residence",
    "passport",
)
ORGANIZATION_ID_TYPES = ("credit_code", "organization_code", "registration")
ID_TYPES = PERSON_ID_TYPES + ORGANIZATION_ID_TYPES

# What each is called in the Provisions' wording (public pages, feeds, exports).
ID_TYPE_NAMES: dict[str, str] = {
    "resident_id": "居民身份证",
    "hk_macao_travel_permit": "港澳居民来往内地通行证",
    "taiwan_travel_permit": "台湾居民来往大陆通行证",
    "foreign_permanent_residence": "外国人永久居留身份证",
    "passport": "护照",
    "credit_code": "统一社会信用代码",
    "organization_code": "组织机构代码",
    "registration": "境外注册号",
}

_HK_MACAO = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?", re.ASCII)
_TAIWAN = re.compile(r"[0-9]{8}", re.ASCII)
_FPR_OLD = re.compile(r"(?P<country>[A-Z]{3})(?P<place>[0-9]{2})(?P<birth>[0-9]{6})[0-9]{3}[0-9]", re.ASCII)
_FPR_NEW = re.compile(
    r"9(?P<province>[0-9]{2})(?P<country>[0-9]{3})(?P<birth>[0-9]{8})[0-9]{3}[0-9X]", re.ASCII
)
_PASSPORT = re.compile(r"[A-Z0-9]{5,20}", re.ASCII)
_REGISTRATION = re.compile(r"[A-Z0-9][A-Z0-9./-]{0,39}", re.ASCII)
_ORG_CODE = re.compile(r"[0-9A-Z]{8}[0-9X]", re.ASCII)


@dataclass(frozen=True)
class Identity:
    """A validated, normalised identifier. `number` is what the registry encrypts; for a
    passport or a registration it is `COUNTRY:NUMBER` (the country is part of the identity)."""

    id_type: str
    number: str
    birth_date: date | None = None
    sex: str | None = None  # "M"/"F" when the document encodes it

    @property
    def kind(self) -> str:
        return "person" if self.id_type in PERSON_ID_TYPES else "organization"

    @property
    def index_input(self) -> str:
        return index_input(self.id_type, self.number)

    @property
    def masked(self) -> str:
        return public_identifier(self.id_type, self.number)

    @property
    def birth_year(self) -> int | None:
        return None if self.birth_date is None else self.birth_date.year

    def fields(self) -> dict[str, object]:
        """The identity as a court sent it (court and agency read-backs)."""
        if self.id_type in PERSON_ID_TYPES:
            if self.id_type == "passport":
                country, _, number = self.number.partition(":")
                return {"id_type": self.id_type, "id_number": number, "nationality": country}
            return {"id_type": self.id_type, "id_number": self.number}
        if self.id_type == "registration":
            country, _, number = self.number.partition(":")
            return {"registration": {"country": country, "number": number}}
        return {self.id_type: self.number}


def index_input(id_type: str, number: str) -> str:
    """What the blind index hashes: the type bound in (see the module docstring)."""
    return number if id_type == "resident_id" else f"{id_type}:{number}"


# ---- persons ----


def parse_person(
    id_type: str | None, raw: str, nationality: str | None = None, *, on: date | None = None
) -> Identity:
    """A person's identifier of `id_type` (default `resident_id`); IdentifierError otherwise.
    `on` is the day the number is read for (a listing's date; today by default): an old
    foreign permanent residence card's two-digit birth year is read against it."""
    kind = id_type or "resident_id"
    if kind not in PERSON_ID_TYPES:
        raise IdentifierError("unknown_id_type", f"id_type must be one of {', '.join(PERSON_ID_TYPES)}")
    if kind != "passport" and nationality is not None:
        raise IdentifierError("invalid_nationality", "nationality is given with a passport only")
    if kind == "resident_id":
        person = parse_id_number(raw)
        return Identity(kind, person.number, person.birth_date, person.sex)
    number = normalise_identifier(raw).replace("-", "")
    if kind == "hk_macao_travel_permit":
        if not _HK_MACAO.fullmatch(number):
            raise _bad_number(kind, "H or M and 8 or 10 digits")
        return Identity(kind, number)
    if kind == "taiwan_travel_permit":
        if not _TAIWAN.fullmatch(number):
            raise _bad_number(kind, "8 digits")
        return Identity(kind, number)
    if kind == "foreign_permanent_residence":
        return _foreign_permanent_residence(number, on)
    country = parse_country(nationality, "nationality")
    if not _PASSPORT.fullmatch(number):
        raise _bad_number(kind, "5 to 20 letters and digits")
    return Identity(kind, f"{country}:{number}")


def _bad_number(kind: str, shape: str) -> IdentifierError:
    return IdentifierError("invalid_id_number", f"a {kind} number is {shape}")


def _foreign_permanent_residence(number: str, on: date | None = None) -> Identity:
    kind = "foreign_permanent_residence"
    new = _FPR_NEW.fullmatch(number)
    if new is not None:
        # 2023 format: 9, province of issue, nationality (numeric), birth date, sequence, and
        # the GB 11643 check character.
        if number[17] != id_check_character(number[:17]) or new["province"] not in PROVINCES:
            raise _bad_number(kind, "9 and 17 characters with a GB 11643 check, or 3 letters and 12 digits")
        return Identity(kind, number, _birth(new["birth"], kind))
    old = _FPR_OLD.fullmatch(number)
    if old is None or old["country"] not in iso3166.countries_by_alpha3:
        raise _bad_number(kind, "9 and 17 characters with a GB 11643 check, or 3 letters and 12 digits")
    return Identity(kind, number, _birth(_with_century(old["birth"], on or china_today()), kind))


def _with_century(yymmdd: str, on: date) -> str:
    """YYYYMMDD of a birth date written YYMMDD: the latest century that puts it on or before `on`.
    Choosing the century in which the holder would be of age made a minor born in 2010 a man
    of 116, listed (SPC Art. 4 forbids it): the minor check is the listing's, not the parser's."""
    year = on.year // 100 * 100 + int(yymmdd[:2])  # ASCII digits: the pattern matched them
    if (year, yymmdd[2:]) > (on.year, f"{on:%m%d}"):
        year -= 100
    return f"{year:04d}{yymmdd[2:]}"


def _birth(yyyymmdd: str, kind: str) -> date:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError as exc:
        raise IdentifierError("invalid_id_number", f"the {kind} number has an impossible birth date") from exc
    if born > china_today():
        raise IdentifierError("invalid_id_number", f"the {kind} number has a birth date in the future")
    return born


def parse_country(raw: str | None, field: str) -> str:
    """An ISO 3166-1 alpha-3 country code, upper case."""
    code = normalise_identifier(raw or "")
    if len(code) != 3 or code not in iso3166.countries_by_alpha3:
        raise IdentifierError(f"invalid_{field}", f"{field} is an ISO 3166-1 alpha-3 country code, e.g. USA")
    return code


# ---- organisations ----


def parse_organization_code(raw: str) -> str:
    """A GB 11714 organisation code: 8 digits or capital letters and a check character, often
    written `60003734-1`; normalised without the hyphen."""
    code = normalise_identifier(raw).replace("-", "")
    if not _ORG_CODE.fullmatch(code) or code[8] != organization_code_check(code[:8]):
        raise IdentifierError(
            "invalid_organization_code", "an organisation code is 8 characters and its GB 11714 check"
        )
    return code


def parse_registration(country: str | None, number: str | None) -> Identity:
    code = parse_country(country, "registration_country")
    value = normalise_identifier(number or "")
    if not _REGISTRATION.fullmatch(value):
        raise IdentifierError(
            "invalid_registration_number", "a registration number is 1 to 40 letters, digits, '.', '/' or '-'"
        )
    return Identity("registration", f"{code}:{value}")


def parse_organization(
    credit_code: str | None = None,
    organization_code: str | None = None,
    registration: tuple[str | None, str | None] | None = None,
) -> Identity:
    """Exactly one of a credit code, an organisation code and a foreign registration."""
    given = [x is not None for x in (credit_code, organization_code, registration)]
    if sum(given) != 1:
        raise IdentifierError(
            "organization_identifier", "give exactly one of credit_code, organization_code and registration"
        )
    if credit_code is not None:
        return Identity("credit_code", parse_credit_code(credit_code))
    if organization_code is not None:
        return Identity("organization_code", parse_organization_code(organization_code))
    assert registration is not None
    return parse_registration(*registration)


def identity_of(id_type: str, number: str, *, on: date | None = None) -> Identity:
    """A stored identity back from its type and decrypted number (already validated). `on`:
    the listing's date, against which an old residence card's birth year was read."""
    if id_type == "resident_id":
        return parse_person("resident_id", number)
    if id_type == "foreign_permanent_residence":
        return _foreign_permanent_residence(number, on)
    return Identity(id_type, number)


# ---- what the public sees ----


def public_identifier(id_type: str, number: str) -> str:
    """The public form: organisations' codes in full (public registration data), persons'
    numbers masked so that no public field narrows them (see docs/privacy.md)."""
    if id_type == "credit_code":
        return number
    if id_type == "organization_code":
        return f"{number[:8]}-{number[8]}"
    if id_type == "registration":
        country, _, value = number.partition(":")
        return f"{country} {value}"
    return mask_person(id_type, number)


def mask_person(id_type: str, number: str) -> str:
    """Persons: the province and the birth year of a resident ID number, the letter of a Hong
    Kong or Macao permit, the nationality of a foreigner; nothing of any sequence or check."""
    if id_type == "resident_id":
        return number[:2] + "****" + number[6:10] + "*" * 8
    if id_type == "hk_macao_travel_permit":
        return number[0] + "*" * (len(number) - 1)
    if id_type == "taiwan_travel_permit":
        return "*" * 8
    if id_type == "foreign_permanent_residence":
        if number[0] == "9":
            return "9**" + number[3:6] + "*" * 12
        return number[:3] + "*" * 12
    if id_type == "passport":
        return number.partition(":")[0] + " " + "*" * 9
    raise ValueError(f"unknown id_type {id_type!r}")


def parse_subject(
    *,
    id_number: str | None,
    id_type: str | None = None,
    nationality: str | None = None,
    credit_code: str | None = None,
    organization_code: str | None = None,
    registration: tuple[str | None, str | None] | None = None,
) -> Identity:
    """A subject a bank checks or watches, or a number the public looks up: a person
    (`id_type` and `id_number`, `nationality` with a passport) or an organisation (one of
    `credit_code`, `organization_code`, `registration`). Exactly one identifier."""
    organisation = [x is not None for x in (credit_code, organization_code, registration)]
    if (id_number is not None) + sum(organisation) != 1:
        raise IdentifierError(
            "subject_identifier",
            "give exactly one identifier: id_number (with id_type), credit_code, organization_code "
            "or registration",
        )
    if id_number is not None:
        return parse_person(id_type, id_number, nationality)
    if id_type is not None or nationality is not None:
        raise IdentifierError("subject_identifier", "id_type and nationality go with an id_number")
    return parse_organization(credit_code, organization_code, registration)
