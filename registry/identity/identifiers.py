"""Chinese identifiers and court references: normalise first, then validate.

The resident ID check and the GB/T 2260 table come from python-stdnum (`stdnum.cn.ric`).
A resident ID number's division code is checked against the whole history of the table, never
against the birth year (stdnum's `ric.validate` ties them, and refuses most older debtors).
Credit codes are checked here in full (`parse_credit_code` says why not by stdnum).
Identifier-like text is ASCII after NFKC: digits of other scripts are refused everywhere.
The other identity types are in `registry.identity.types`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from stdnum import exceptions as stdnum_exceptions
from stdnum import numdb
from stdnum.cn import ric

PROVINCES: dict[str, str] = {
    "11": "北京",
    "12": "天津",
    "13": "河北",
    "14": "山西",
    "15": "内蒙古",
    "21": "辽宁",
    "22": "吉林",
    "23": "黑龙江",
    "31": "上海",
    "32": "江苏",
    "33": "浙江",
    "34": "安徽",
    "35": "福建",
    "36": "江西",
    "37": "山东",
    "41": "河南",
    "42": "湖北",
    "43": "湖南",
    "44": "广东",
    "45": "广西",
    "46": "海南",
    "50": "重庆",
    "51": "四川",
    "52": "贵州",
    "53": "云南",
    "54": "西藏",
    "61": "陕西",
    "62": "甘肃",
    "63": "青海",
    "64": "宁夏",
    "65": "新疆",
    "71": "台湾",
    "81": "香港",
    "82": "澳门",
}

# Court-code abbreviations (案号规定): one character per province, plus 兵 (XPCC courts,
# in Xinjiang) and 军 (military courts, no province).
COURT_ABBREVIATIONS: dict[str, str | None] = {
    "京": "11",
    "津": "12",
    "冀": "13",
    "晋": "14",
    "内": "15",
    "辽": "21",
    "吉": "22",
    "黑": "23",
    "沪": "31",
    "苏": "32",
    "浙": "33",
    "皖": "34",
    "闽": "35",
    "赣": "36",
    "鲁": "37",
    "豫": "41",
    "鄂": "42",
    "湘": "43",
    "粤": "44",
    "桂": "45",
    "琼": "46",
    "渝": "50",
    "川": "51",
    "黔": "52",
    "云": "53",
    "藏": "54",
    "陕": "61",
    "甘": "62",
    "青": "63",
    "宁": "64",
    "新": "65",
    "兵": "65",
    "军": None,
}

ENFORCEMENT_TYPES = ("执恢", "执保", "执异", "执复", "执监", "执协", "执他", "执")

_ABBREVIATION_CLASS = "".join(COURT_ABBREVIATIONS)
# ASCII digits only ([0-9], never the Unicode digit class): NFKC folds full-width digits but not Arabic-Indic,
# Ethiopic or other scripts' digits, which would make a second spelling of the same case.
# Matched with fullmatch, so that no trailing line feed slips through `$`.
_COURT_CODE = rf"(?:最高法|[{_ABBREVIATION_CLASS}](?:[0-9]{{4}}|[0-9]{{2}})?)"
COURT_CODE_RE = re.compile(_COURT_CODE)
CASE_NUMBER_RE = re.compile(
    rf"（(?P<year>[0-9]{{4}})）(?P<court>{_COURT_CODE})(?P<type>{'|'.join(ENFORCEMENT_TYPES)})(?P<seq>[0-9]{{1,7}})号"
)


_CHINA_TIME = ZoneInfo("Asia/Shanghai")


def china_today() -> date:
    return datetime.now(_CHINA_TIME).date()


class IdentifierError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _nfkc(value: str) -> str:
    # Most text arrives normalised; checking is several times cheaper than normalising.
    return value if unicodedata.is_normalized("NFKC", value) else unicodedata.normalize("NFKC", value)


def normalise_text(value: str) -> str:
    """NFKC (full-width digits, letters and brackets to ASCII), inner whitespace collapsed."""
    return " ".join(_nfkc(value).split())


def normalise_identifier(value: str) -> str:
    return "".join(_nfkc(value).split()).upper()


def normalise_case_number(value: str) -> str:
    """The display form used by the courts: full-width brackets, ASCII digits, no spaces."""
    # NFKC turns （ ） into ( ), which compose with nothing: folding them first gives the
    # same text, and lets a case number already in display form pass the quick check.
    text = "".join(_nfkc(value.replace("（", "(").replace("）", ")")).split())
    return text.replace("(", "（").replace(")", "）")


@dataclass(frozen=True)
class PersonId:
    number: str
    birth_date: date
    sex: str  # "M" or "F": GB 11643 sequence digit, odd for men


# GB/T 2260 codes that stdnum's table lacks, with the year each came into use. Its table ends
# Hangzhou's 下城区 and 江干区 in 2021 but never adds the districts that replaced them.
DIVISIONS_STDNUM_LACKS: dict[str, tuple[int, None]] = {
    "330113": (2021, None),  # 临平区
    "330114": (2021, None),  # 钱塘区
}


@lru_cache(maxsize=16384)
def _division_periods(code: str) -> tuple[tuple[int | None, int | None], ...]:
    """When a GB/T 2260 county code was in use, from stdnum's table (as `ric.get_birth_place`
    reads it). Cached per code: an uncached lookup costs ~150 µs, the ingest budget's half."""
    if code in DIVISIONS_STDNUM_LACKS:
        return (DIVISIONS_STDNUM_LACKS[code],)
    info = {k: v for _part, props in numdb.get("cn/loc").info(code) for k, v in props.items()}
    periods: list[tuple[int | None, int | None]] = []
    for county in info.get("county", "").split(",") if info.get("county") else []:
        if not county.startswith("["):
            return ((None, None),)
        start, end = county[1:].split("]", 1)[0].split("-")
        periods.append((int(start) if start else None, int(end) if end else None))
    return tuple(periods)


@lru_cache(maxsize=1)
def division_codes() -> tuple[str, ...]:
    """Every six-digit code stdnum's GB/T 2260 table has had at any time, sorted."""
    codes: list[str] = []

    def walk(prefix: str, entries: list[Any]) -> None:
        for length, low, high, _props, children in entries:
            if len(prefix) + length > 6 or not (ascii_digits(low) and ascii_digits(high)):
                continue
            for value in range(int(low), int(high) + 1):
                code = prefix + f"{value:0{length}d}"
                if len(code) == 6:
                    codes.append(code)
                else:
                    walk(code, children)

    walk("", numdb.get("cn/loc").prefixes)
    return tuple(sorted({*codes, *DIVISIONS_STDNUM_LACKS}))


def current_division_codes() -> tuple[str, ...]:
    """The county-level codes in use today (no end year), without province and city rows."""
    return tuple(
        code
        for code in division_codes()
        if code[4:] != "00" and any(end is None for _start, end in _division_periods(code))
    )


def warm_division_cache() -> int:
    """Look up every county code once, so that later checks never miss the cache.

    Worker processes call this at start: a cold lookup costs ~150 µs, and real ingest
    touches thousands of distinct counties. Returns how many codes were cached.
    """
    codes = division_codes()
    for code in codes:
        _division_periods(code)
    return len(codes)


# Residence permits of Hong Kong, Macao and Taiwan residents (港澳台居民居住证, 2018) use the
# GB 11643 format with these codes. stdnum's table has 810000 from 1997, 820000 from 1999 and no
# 830000; the permits are held by people of any age.
RESIDENCE_PERMIT_DIVISIONS = frozenset({"810000", "820000", "830000"})

_ASCII_DIGITS = re.compile(r"[0-9]+", re.ASCII)


def ascii_digits(text: str) -> bool:
    """True when `text` is one or more ASCII digits (never other scripts' digits, which
    Python's digit tests, the regex digit class and `int()` all accept)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def known_division(code: str) -> bool:
    """A division code that GB/T 2260 has had at ANY time, or a residence-permit code.

    An ID number's division code is the county of household registration when the number was
    assigned (first cards 1984, 15-digit numbers extended later, counties renamed and recoded
    since), so it is never checked against the birth year: Pudong 310115 (from 1993) is held by
    people born in 1980.
    """
    return code in RESIDENCE_PERMIT_DIVISIONS or bool(_division_periods(code))


def id_check_character(body17: str) -> str:
    """GB 11643 check character of 17 ASCII digits (stdnum's takes the number with a check)."""
    return str(ric.calc_check_digit(body17 + "0"))


def upgrade_15_digit(number: str) -> str:
    """An old 15-digit number (YYMMDD, no check character) in its 18-digit form: `19` inserted
    before the year and the check character computed, as the extension to 18 digits did."""
    body = number[:6] + "19" + number[6:15]
    return body + id_check_character(body)


def parse_id_number(raw: str) -> PersonId:
    """A resident ID number (GB 11643, 18 characters; an old 15-digit number is converted to its
    18-digit form first, so both find the same person): ASCII digits, the check character, a
    real birth date not in the future, and a division code known at any time in GB/T 2260."""
    number = normalise_identifier(raw)
    if len(number) == 15 and ascii_digits(number):
        number = upgrade_15_digit(number)
    try:
        if len(number) != 18 or not ascii_digits(number[:17]) or number[17] not in "0123456789X":
            raise stdnum_exceptions.InvalidFormat()
        if number[-1] != ric.calc_check_digit(number):
            raise stdnum_exceptions.InvalidChecksum()
        try:
            birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        except ValueError as exc:
            raise stdnum_exceptions.InvalidComponent() from exc
        if birth > china_today() or not known_division(number[:6]):
            raise stdnum_exceptions.InvalidComponent()
    except stdnum_exceptions.InvalidChecksum as exc:
        raise IdentifierError("invalid_id_number", "the ID number's check character is wrong") from exc
    except stdnum_exceptions.InvalidComponent as exc:
        raise IdentifierError(
            "invalid_id_number", "the ID number has an impossible birth date or an unknown division code"
        ) from exc
    except stdnum_exceptions.ValidationError as exc:
        raise IdentifierError(
            "invalid_id_number", "an ID number is 17 digits and a check character (or an old 15-digit number)"
        ) from exc
    return PersonId(number=number, birth_date=birth, sex="M" if int(number[16]) % 2 else "F")


# GB 32100's alphabet (no I, O, S, V, Z) and check weights, as a table from character to value.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {char: value for value, char in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Registration authority and entity type (alphabet), division code (digits), organisation
# code (alphabet), check character.
_USCC_CHARACTER = "[0-9A-HJ-NPQRTUWXY]"
_USCC_FORM = re.compile(rf"{_USCC_CHARACTER}{{2}}[0-9]{{6}}{_USCC_CHARACTER}{{10}}", re.ASCII)
# GB 11714 organisation code: weights of the 8 body characters (digits, letters from A = 10).
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def organization_code_check(body8: str) -> str:
    """GB 11714 check character: 11 - (sum of value * weight mod 11); 10 is X, 11 is 0."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def _uscc_check(code: str) -> str:
    total = sum(_USCC_VALUE[char] * weight for char, weight in zip(code, _USCC_WEIGHTS, strict=False))
    return _USCC_ALPHABET[-total % 31]


def parse_credit_code(raw: str) -> str:
    """A GB 32100 unified social credit code, normalised (spaces and hyphens dropped).

    Checked here in full, not by stdnum's `uscc.validate`: that demands eight leading digits,
    refusing the registration authorities and entity types written as letters (A the military's
    establishment office, N agriculture, Y other), and never checks the organisation code
    inside (characters 9-17, GB 11714).
    """
    code = normalise_identifier(raw).replace("-", "")
    if _USCC_FORM.fullmatch(code) is None:
        raise IdentifierError(
            "invalid_credit_code",
            "a unified social credit code is 18 characters of GB 32100: authority and type, "
            "a six-digit division code, the organisation code and the check character",
        )
    if code[17] != _uscc_check(code):
        raise IdentifierError("invalid_credit_code", "the credit code's check character is wrong")
    if code[16] != organization_code_check(code[8:16]):
        raise IdentifierError(
            "invalid_credit_code",
            "the organisation code inside the credit code (characters 9-17) fails its GB 11714 check",
        )
    return code


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def province_of_court(court_code: str) -> str | None:
    if court_code == "最高法":
        return None
    return COURT_ABBREVIATIONS.get(court_code[0])


@dataclass(frozen=True)
class CaseNumber:
    text: str
    year: int
    court_code: str
    case_type: str
    sequence: int


def parse_case_number(raw: str) -> CaseNumber:
    text = normalise_case_number(raw)
    match = CASE_NUMBER_RE.fullmatch(text)
    if match is None:
        raise IdentifierError(
            "invalid_case_number",
            "a case number reads （year）court-code type sequence号, e.g. （2024）京0105执1234号",
        )
    return _case_number(text, match)


# Before 2016: （2015）朝执字第01234号, the court named by its abbreviation (Chinese characters).
LEGACY_CASE_NUMBER_RE = re.compile(
    rf"（(?P<year>[0-9]{{4}})）(?P<court>[\u4e00-\u9fff]{{1,8}}?)(?P<type>{'|'.join(ENFORCEMENT_TYPES)})"
    r"字第(?P<seq>[0-9]{1,7})号"
)


def parse_legacy_case_number(raw: str) -> CaseNumber | None:
    """A case number of the form used before 2016, or None; `court_code` is the abbreviation."""
    text = normalise_case_number(raw)
    match = LEGACY_CASE_NUMBER_RE.fullmatch(text)
    return None if match is None else _case_number(text, match)


def _case_number(text: str, match: re.Match[str]) -> CaseNumber:
    return CaseNumber(
        text=text,
        year=int(match["year"]),
        court_code=match["court"],
        case_type=match["type"],
        sequence=int(match["seq"]),
    )


def normalise_court_code(raw: str) -> str:
    code = "".join(_nfkc(raw).split())
    if not COURT_CODE_RE.fullmatch(code):
        raise IdentifierError(
            "invalid_court_code", "a court code is 最高法, or a province abbreviation and 2 or 4 digits"
        )
    return code
