"""The public query, from raw request parameters to a validated `SearchQuery`, or a 400 problem.

Rules (the same for the JSON API, the web page and both engines):
- a query names a text (`q`), an `id_number` or a `credit_code`; filters alone are refused
  (`query_required`): the list is looked up, not browsed, as on the national site. For the
  same reason a text that matches a large share of the list (one character, one pinyin
  syllable: `search.text.too_broad`) needs a province or a court beside it
  (`query_too_broad`), and a text made only of the words of a legal form such as 有限公司,
  which names no debtor, is refused unless a number is given (`query_names_no_one`);
- `q` is NFKC-normalised, at most MAX_QUERY_CHARS characters, without control characters,
  and must hold a letter or digit; an identifier must be a valid full number (checksum and
  all) and is matched through the blind index, so a partial number finds nothing by design;
- a number typed into `q` is recognised as one (`recognise_number`, the web page's one
  field goes the same way): a resident ID number, a credit code, a foreign permanent
  residence ID, a Hong Kong or Macao permit or an organisation code is checked and looked
  up exactly, as `id_number` (with its `id_type`) / `credit_code` / `organization_code`;
  six digits or more in anything else are
  refused (`incomplete_identifier`), never answered with an empty list that would read as
  "not listed";
- codes are checked against their closed lists (province, kind, ground) or their format
  (court); dates are ISO `YYYY-MM-DD`;
- `page` >= 1, `per_page` 1..MAX_PER_PAGE, and the page must end within the first
  MAX_WINDOW results (`page_out_of_range`); a page past the last hit inside that window
  is simply empty.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from typing import NamedTuple

from registry.identity.crypto import BlindIndex
from registry.identity.identifiers import (
    PROVINCES,
    IdentifierError,
    normalise_court_code,
    normalise_identifier,
    parse_credit_code,
    parse_id_number,
)
from registry.identity.types import parse_organization_code, parse_person, parse_subject
from registry.listings.schemas import GROUNDS
from registry.problems import Problem
from registry.text import forbidden_character
from search.interface import KINDS, SearchQuery
from search.text import names_no_one, text_match, too_broad

ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9X]")
_OLD_ID_NUMBER = re.compile(r"[0-9]{15}")  # converted to 18 digits by parse_id_number
# Registration authority and entity type (2), division code (6 digits), the rest (10): a
# pinyin name never has six digits in the middle.
_CREDIT_CODE = re.compile(r"[0-9A-Z]{2}[0-9]{6}[0-9A-Z]{10}")
_HK_MACAO_PERMIT = re.compile(r"[HM][0-9]{8}(?:[0-9]{2})?")
_OLD_RESIDENCE_ID = re.compile(r"[A-Z]{3}[0-9]{12}")  # 2004 form: nationality, place, birth, sequence
# GB 11714: 8 digits or capital letters and a check character, written 60003734-1. With its
# hyphen it is nothing else. Without it, nine characters with six digits or more may be a
# passport (E and 8 digits, or 9 digits) that passes the check one time in eleven, so only
# one with fewer digits whose check passes is taken for a code; a pinyin name never ends in
# a digit or x, so none is taken.
_ORG_CODE_HYPHENATED = re.compile(r"[0-9A-Z]{8}-[0-9X]")
_ORG_CODE = re.compile(r"[0-9A-Z]{8}[0-9X]")
# Names hardly hold six digits; a query that does is a number, and numbers must be whole.
# Digits of any script count here (a number in Arabic-Indic digits is refused, not searched
# as a name); only ASCII ones (NFKC folds full-width digits) make a number to look up.
NUMBER_LIKE_DIGITS = 6
MAX_QUERY_CHARS = 64
MAX_PARAM_CHARS = 200
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# Deep pages are for crawlers, not people; Meilisearch caps its window the same way.
MAX_WINDOW = 10_000
PARAMETERS = (
    "q",
    "id_number",
    "id_type",
    "nationality",
    "credit_code",
    "organization_code",
    "registration_country",
    "registration_number",
    "province",
    "court",
    "kind",
    "ground",
    "published_from",
    "published_to",
    "page",
    "per_page",
)


def _bad(code: str, detail: str, name: str) -> Problem:
    return Problem(400, code, detail, pointer=f"/query/{name}")


def _clean(params: Mapping[str, str | None], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if len(raw) > MAX_PARAM_CHARS:
        raise _bad("parameter_too_long", f"{name} is longer than {MAX_PARAM_CHARS} characters", name)
    # The registry's own rule (`registry.text`), so that every name it accepted can be
    # searched for. Private-use and not yet assigned code points pass: rare name characters
    # live there in some systems.
    if forbidden_character(raw) is not None:
        raise _bad("control_characters", f"{name} holds control or format characters", name)
    value = " ".join(unicodedata.normalize("NFKC", raw).split())
    return value or None


def _choice(
    params: Mapping[str, str | None], name: str, allowed: Mapping[str, object] | tuple[str, ...]
) -> str | None:
    value = _clean(params, name)
    if value is not None and value not in allowed:
        raise _bad(f"unknown_{name}", f"{name} must be one of {', '.join(allowed)}", name)
    return value


def _date(params: Mapping[str, str | None], name: str) -> date | None:
    value = _clean(params, name)
    if value is None:
        return None
    try:
        if not ISO_DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _bad("invalid_date", f"{name} must be a date as YYYY-MM-DD", name) from exc


def _int(params: Mapping[str, str | None], name: str, default: int, low: int, high: int) -> int:
    value = _clean(params, name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > 9 or not low <= int(value) <= high:
        raise _bad(f"invalid_{name}", f"{name} must be a whole number from {low} to {high}", name)
    return int(value)


_IDENTIFIER_PARAMS = (
    "id_number",
    "id_type",
    "nationality",
    "credit_code",
    "organization_code",
    "registration_country",
    "registration_number",
)
# The numbers themselves (a registration is one number in two parameters).
_NUMBER_PARAMS = (
    "id_number",
    "credit_code",
    "organization_code",
    "registration_country",
    "registration_number",
)
# Where a refused identifier points, by its error code.
_IDENTIFIER_POINTERS = {
    "unknown_id_type": "id_type",
    "invalid_nationality": "nationality",
    "invalid_credit_code": "credit_code",
    "invalid_organization_code": "organization_code",
    "invalid_registration_country": "registration_country",
    "invalid_registration_number": "registration_number",
}


def _subject_refused(values: Mapping[str, str | None]) -> Problem:
    """Why the identifiers given name no one subject, at a parameter that was given: two
    numbers (`conflicting_identifiers`, at the second), or an `id_type` or `nationality`
    with no `id_number` for it to qualify (`invalid_parameter`, at it)."""
    given = [name for name in _NUMBER_PARAMS if values[name] is not None]
    # A registration's country and number are one number.
    numbers = [name for name in given if name != "registration_number" or "registration_country" not in given]
    if len(numbers) > 1:
        return _bad(
            "conflicting_identifiers",
            "give one number: an id_number, a credit_code, an organization_code or a registration",
            numbers[1],
        )
    for name in ("id_type", "nationality"):
        if values[name] is not None:
            return _bad(
                "invalid_parameter",
                f"{name} qualifies an id_number: give the full id_number of that document with it",
                name,
            )
    first = next((name for name in _IDENTIFIER_PARAMS if values[name] is not None), "id_number")
    return _bad("invalid_parameter", "these parameters name no one subject", first)


def _identity_blind(params: Mapping[str, str | None], blind_index: BlindIndex) -> tuple[bytes, ...]:
    """The blind index of the number asked for, as ingest computed it (listings.prepare), and
    the same under the retiring key during a key rotation: a
    person's `id_number` of `id_type` (with `nationality` for a passport), or an
    organisation's `credit_code`, `organization_code` or `registration_country` and
    `registration_number`. Empty when no number is asked for."""
    values = {name: _clean(params, name) for name in _IDENTIFIER_PARAMS}
    country, number = values["registration_country"], values["registration_number"]
    if all(v is None for v in values.values()):
        return ()
    default = str(params.get("_number_in") or "id_number")
    try:
        identity = parse_subject(
            id_number=values["id_number"],
            id_type=values["id_type"],
            nationality=values["nationality"],
            credit_code=values["credit_code"],
            organization_code=values["organization_code"],
            registration=None if country is None and number is None else (country, number),
        )
    except IdentifierError as exc:
        if exc.code == "subject_identifier":
            raise _subject_refused(values) from exc
        pointer = default if default == "q" else _IDENTIFIER_POINTERS.get(exc.code, "id_number")
        raise _bad(exc.code, exc.message, pointer) from exc
    return blind_index.candidates(identity.index_input)


class TypedNumber(NamedTuple):
    """A full number recognised in `q`: the parameter it stands for (`id_number`,
    `credit_code` or `organization_code`), its `id_type` for a person, and the number as
    typed (compact; an organisation code with its hyphen, as it is written)."""

    param: str
    id_type: str | None
    number: str


def _valid(parse: Callable[[], object]) -> bool:
    try:
        parse()
    except IdentifierError:
        return False
    return True


def _eighteen(compact: str) -> TypedNumber:
    """Eighteen characters: a resident ID, a credit code (some are all digits) or a 2023
    foreign permanent residence ID (9 and a GB 11643 check). The first shape whose checks
    pass; when none does, the one its first two characters suggest, whose error is shown."""
    resident = TypedNumber("id_number", "resident_id", compact)
    credit = TypedNumber("credit_code", None, compact)
    residence = TypedNumber("id_number", "foreign_permanent_residence", compact)
    if _ID_NUMBER.fullmatch(compact) and _valid(lambda: parse_id_number(compact)):
        return resident
    if _CREDIT_CODE.fullmatch(compact) and _valid(lambda: parse_credit_code(compact)):
        return credit
    if compact.startswith("9") and _valid(lambda: parse_person("foreign_permanent_residence", compact)):
        return residence
    if _ID_NUMBER.fullmatch(compact) and compact[:2] in PROVINCES:
        return resident
    return credit if _CREDIT_CODE.fullmatch(compact) else resident


def recognise_number(q: str) -> TypedNumber | None:
    """The full number `q` is shaped like, or None for a name: a resident ID number (18
    characters, or 15 digits), a credit code, a foreign permanent residence ID (2023 or
    2004 form), a Hong Kong or Macao permit (H or M and 8 or 10 digits), an organisation
    code (with its hyphen; without it, see _ORG_CODE). Six digits or more in anything else
    are refused, as an incomplete number (a Taiwan permit's 8 digits or a passport need
    `id_number` with `id_type`: alone they cannot be told from a fragment)."""
    compact = normalise_identifier(q)
    unhyphenated = compact.replace("-", "")
    digits = sum(1 for ch in compact if unicodedata.category(ch) == "Nd")
    if len(compact) == 18 and (_ID_NUMBER.fullmatch(compact) or _CREDIT_CODE.fullmatch(compact)):
        return _eighteen(compact)
    if _OLD_ID_NUMBER.fullmatch(compact):
        return TypedNumber("id_number", "resident_id", compact)
    if _HK_MACAO_PERMIT.fullmatch(unhyphenated):
        return TypedNumber("id_number", "hk_macao_travel_permit", unhyphenated)
    if _OLD_RESIDENCE_ID.fullmatch(compact):
        return TypedNumber("id_number", "foreign_permanent_residence", compact)
    # A wrong check of a hyphenated code is refused by the lookup (invalid_organization_code).
    if _ORG_CODE_HYPHENATED.fullmatch(compact) or (
        _ORG_CODE.fullmatch(compact)
        and digits < NUMBER_LIKE_DIGITS
        and _valid(lambda: parse_organization_code(compact))
    ):
        return TypedNumber("organization_code", None, f"{unhyphenated[:8]}-{unhyphenated[8]}")
    if digits >= NUMBER_LIKE_DIGITS:
        raise _bad(
            "incomplete_identifier",
            "q holds a number that is not a full ID number, credit code, residence ID, Hong Kong "
            "or Macao permit or organisation code: numbers are looked up whole, never in part or "
            "masked (an organisation code is written with its hyphen, 60003734-1: nine digits "
            "alone could be a passport number)",
            "q",
        )
    return None


def _number_in_q(params: Mapping[str, str | None]) -> Mapping[str, str | None]:
    """`params` with a number typed into `q` moved to its own parameter (errors still point
    at `q`, where it was typed)."""
    text = _clean(params, "q")
    if text is None or len(text) > MAX_QUERY_CHARS:
        return params
    number = recognise_number(text)
    if number is None:
        return params
    if any(params.get(name) is not None for name in _IDENTIFIER_PARAMS):
        raise _bad("conflicting_identifiers", "give one number: in q, id_number or credit_code", "q")
    return {**params, "q": None, number.param: number.number, "id_type": number.id_type, "_number_in": "q"}


def parse_query(params: Mapping[str, str | None], blind_index: BlindIndex) -> SearchQuery:
    params = _number_in_q(params)
    text = _clean(params, "q")
    if text is not None:
        if len(text) > MAX_QUERY_CHARS:
            raise _bad("query_too_long", f"q is longer than {MAX_QUERY_CHARS} characters", "q")
        if text_match(text) is None:
            raise _bad("invalid_query", "q must contain at least one letter or digit", "q")
    blinds = _identity_blind(params, blind_index)
    identifier_blind = blinds[0] if blinds else None
    if text is None and identifier_blind is None:
        raise _bad(
            "query_required",
            "give a name (q), an id_number, a credit_code, an organization_code or a registration",
            "q",
        )
    court = _clean(params, "court")
    if court is not None:
        try:
            court = normalise_court_code(court)
        except IdentifierError as exc:
            raise _bad("invalid_court", exc.message, "court") from exc
    province = _choice(params, "province", PROVINCES)
    if text is not None and identifier_blind is None:
        if names_no_one(text):
            raise _bad(
                "query_names_no_one",
                "q holds only the words of a legal form (such as 有限公司): add part of the name",
                "q",
            )
        if province is None and court is None and too_broad(text):
            raise _bad(
                "query_too_broad",
                "q alone would match a large share of the list (one character or one pinyin "
                "syllable): add a province or a court",
                "q",
            )
    published_from = _date(params, "published_from")
    published_to = _date(params, "published_to")
    if published_from and published_to and published_from > published_to:
        raise _bad("invalid_date_range", "published_from is after published_to", "published_from")
    page = _int(params, "page", 1, 1, MAX_WINDOW)
    per_page = _int(params, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    if page * per_page > MAX_WINDOW:
        raise _bad("page_out_of_range", f"only the first {MAX_WINDOW} results can be paged through", "page")
    return SearchQuery(
        text=text,
        identifier_blind=identifier_blind,
        identifier_blind_retiring=blinds[1] if len(blinds) > 1 else None,
        province=province,
        court=court,
        kind=_choice(params, "kind", KINDS),
        ground=_choice(params, "ground", GROUNDS),
        published_from=published_from,
        published_to=published_to,
        page=page,
        per_page=per_page,
    )
