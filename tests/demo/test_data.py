"""The demo data generator produces valid, deterministic, realistic listings."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from datetime import date

import pytest
from stdnum import numdb
from stdnum.cn import ric, uscc

from demo.data import GROUNDS, DemoCourt, DemoGenerator, demo_courts
from registry.identity.identifiers import current_division_codes, parse_id_number
from registry.identity.types import ID_TYPES, parse_organization, parse_person
from registry.listings.prepare import add_months

TODAY = date(2025, 6, 1)
LISTING_KEYS = {
    "court_code",
    "case_number",
    "filed_on",
    "basis",
    "debtor",
    "obligations",
    "amount_cents",
    "performance",
    "grounds",
    "term_years",
    "listed_on",
    "submission_id",
    "decision",
}
# Written out independently of the module: the SPC case-number abbreviations.
ABBREVIATIONS = {
    "京": "11", "津": "12", "冀": "13", "晋": "14", "内": "15", "辽": "21", "吉": "22", "黑": "23",
    "沪": "31", "苏": "32", "浙": "33", "皖": "34", "闽": "35", "赣": "36", "鲁": "37", "豫": "41",
    "鄂": "42", "湘": "43", "粤": "44", "桂": "45", "琼": "46", "渝": "50", "川": "51", "黔": "52",
    "云": "53", "藏": "54", "陕": "61", "甘": "62", "青": "63", "宁": "64", "新": "65",
}  # fmt: skip
CJK = re.compile(r"^[\u4e00-\u9fff]+$")
CURRENT_CODES = frozenset(current_division_codes())


def _generate(seed: int, count: int) -> list[tuple[DemoCourt, dict[str, object]]]:
    generator = DemoGenerator(seed)
    courts = demo_courts()
    picked = [courts[i % len(courts)] for i in range(count)]
    return [(court, generator.listing(court, TODAY)) for court in picked]


def _age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _gb11714_check(body: str) -> str:
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    value = 11 - sum(int(ch, 36) * w for ch, w in zip(body, weights, strict=True)) % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def _current_county(code: str) -> str | None:
    """The county's present name in stdnum's GB/T 2260 table, or None."""
    parts = numdb.get("cn/loc").info(code)
    county = parts[1][1].get("county") if len(parts) > 1 else None
    if county is None:
        return None
    last = county.split(",")[-1]
    if last.startswith("[") and not last.split("]")[0].endswith("-"):
        return None  # the code was retired
    return last.split("]")[-1]


def test_listings_are_valid_and_follow_the_rules() -> None:
    listings = _generate(seed=7, count=2_000)
    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    births: Counter[int] = Counter()
    old_numbers = 0
    solo_ground = 0
    for court, listing in listings:
        assert set(listing) - {"creditor", "extension"} == LISTING_KEYS
        json.dumps(listing, ensure_ascii=False)  # JSON-compatible, no date objects
        assert listing["court_code"] == court.code

        filed_on = date.fromisoformat(str(listing["filed_on"]))
        listed_on = date.fromisoformat(str(listing["listed_on"]))
        assert 30 <= (TODAY - filed_on).days <= 3 * 365 + 1
        assert (listed_on - filed_on).days >= 30
        assert listed_on <= TODAY

        match = re.fullmatch(rf"（(\d{{4}})）{re.escape(court.code)}执(\d+)号", str(listing["case_number"]))
        assert match is not None, listing["case_number"]
        assert int(match[1]) == filed_on.year
        assert 1 <= int(match[2]) <= 99_999

        basis = listing["basis"]
        assert isinstance(basis, dict)
        assert set(basis) == {"document_number", "issuer"}
        basis_match = re.fullmatch(r"[（〔](\d{4})[）〕].+第?\d+号", basis["document_number"])
        assert basis_match is not None, basis
        assert int(basis_match[1]) <= filed_on.year
        assert basis["issuer"].endswith(("人民法院", "仲裁委员会", "仲裁院"))

        debtor = listing["debtor"]
        assert isinstance(debtor, dict)
        kinds[debtor["kind"]] += 1
        if debtor["kind"] == "person":
            identity = parse_person(debtor.get("id_type"), debtor["id_number"], debtor.get("nationality"))
            types[identity.id_type] += 1
            if identity.id_type == "resident_id":
                assert set(debtor) == {"kind", "name", "id_number"}
                number = identity.number
                # Any code in use today, whatever the birth year: never tied to it.
                assert number[:6] in CURRENT_CODES
                births[int(number[6:10])] += 1
                old_numbers += len(debtor["id_number"]) == 15
            if identity.birth_date is not None:
                age = _age_on(identity.birth_date, listed_on)
                assert age >= 18 and 1950 <= identity.birth_date.year <= 2007
        else:
            assert debtor["kind"] == "organization"
            registration = debtor.get("registration")
            identity = parse_organization(
                debtor.get("credit_code"),
                debtor.get("organization_code"),
                None if registration is None else (registration["country"], registration["number"]),
            )
            types[identity.id_type] += 1
            if identity.id_type == "credit_code":
                assert set(debtor) == {"kind", "name", "credit_code", "legal_representative"}
                code = uscc.validate(debtor["credit_code"])
                assert code[:2] == "91"
                assert code[16] == _gb11714_check(code[8:16])
            assert debtor["name"].endswith("有限公司")
            assert 2 <= len(debtor["legal_representative"]) <= 4
        assert len(debtor["name"]) >= 2

        amount = listing["amount_cents"]
        assert isinstance(amount, int)
        assert 10_000_00 <= amount <= 50_000_000_00
        assert f"人民币{amount // 100:,}.{amount % 100:02d}元" in str(listing["obligations"])

        performance = listing["performance"]
        assert isinstance(performance, dict)
        if performance["status"] == "none":
            assert performance == {"status": "none"}
        else:
            assert set(performance) == {"status", "performed_cents", "unperformed_cents"}
            assert performance["status"] == "partial"
            assert performance["performed_cents"] > 0
            assert performance["unperformed_cents"] > 0
            assert performance["performed_cents"] + performance["unperformed_cents"] == amount

        grounds = listing["grounds"]
        assert isinstance(grounds, list)
        assert grounds
        assert grounds == sorted(set(grounds))
        assert set(grounds) <= set(GROUNDS)
        term = listing["term_years"]
        if grounds == ["able_but_refuses"]:
            solo_ground += 1
            assert term is None
        else:
            assert term in {2, 3, 4, 5}
            assert term == 2 or len(grounds) >= 2
            # SPC Art. 2: a longer term is an extension the listing carries.
            assert ("extension" in listing) == (term > 2)
            # A term that has already ended is never published (SPC Art. 2).
            assert add_months(listed_on, 12 * term) >= TODAY

        # SPC Art. 5: the decision to list; the creditor named when it applied.
        decision = listing["decision"]
        assert isinstance(decision, dict)
        assert filed_on <= date.fromisoformat(decision["decided_on"]) <= listed_on
        assert decision["document_number"] == listing["case_number"]
        applied = decision["initiated_by"] == "creditor_application"
        assert applied or decision["initiated_by"] == "court_initiative"
        assert ("creditor" in listing) == applied

    # Every identity type appears (issue 14), old numbers too, and birth years span 1950-2007
    # with codes of every era: the class of bug that refused older debtors cannot hide.
    assert set(types) == set(ID_TYPES), types
    assert old_numbers > 0
    assert min(births) <= 1955 and max(births) >= 2000
    # The shares the brief asks for, with room for sampling noise.
    assert 0.70 <= kinds["person"] / len(listings) <= 0.80
    assert 0.45 <= solo_ground / len(listings) <= 0.55
    ids = [str(listing["submission_id"]) for _court, listing in listings]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_same_seed_same_output_different_seed_different_output() -> None:
    first = _generate(seed=42, count=200)
    assert first == _generate(seed=42, count=200)
    assert first != _generate(seed=43, count=200)
    generator_a, generator_b = DemoGenerator(5), DemoGenerator(5)
    assert [generator_a.person_name() for _ in range(50)] == [generator_b.person_name() for _ in range(50)]


def test_person_names_look_chinese() -> None:
    generator = DemoGenerator(1)
    names = [generator.person_name() for _ in range(5_000)]
    assert all(2 <= len(name) <= 4 and CJK.match(name) for name in names)
    two_char = sum(len(name) == 2 for name in names) / len(names)
    assert 0.38 <= two_char <= 0.52
    surnames = Counter(name[0] for name in names)
    # 王, 李 and 张 lead, as in the census.
    assert {char for char, _n in surnames.most_common(4)} >= {"王", "李", "张"}
    assert len(set(names)) > 1_000  # common names repeat, but not everything does


def test_id_numbers_match_the_requested_birth_range_and_sex() -> None:
    generator = DemoGenerator(3)
    low, high = date(1930, 1, 1), date(2010, 12, 31)
    refused_by_a_birth_year_rule = 0
    for i in range(3_000):
        sex = ("M", "F", None)[i % 3]
        number = parse_id_number(generator.id_number(low, high, sex)).number
        refused_by_a_birth_year_rule += not ric.is_valid(number)  # stdnum ties code and birth year
        assert low <= parse_id_number(number).birth_date <= high
        if sex is not None:
            assert (int(number[16]) % 2 == 1) == (sex == "M")
        assert number[14:17] != "000"
    # Most numbers of older people carry codes created after their birth (DOMAIN.md).
    assert refused_by_a_birth_year_rule > 300
    exact = generator.id_number(date(1984, 2, 29), date(1984, 2, 29), "F")
    assert exact[6:14] == "19840229"
    with pytest.raises(ValueError, match="after"):
        generator.id_number(date(2000, 1, 2), date(2000, 1, 1))


def test_credit_codes_are_valid() -> None:
    generator = DemoGenerator(4)
    for _ in range(2_000):
        code = uscc.validate(generator.credit_code())
        assert code[0] == "9"
        assert code[16] == _gb11714_check(code[8:16])
    pinned = generator.credit_code("440304")
    assert pinned[2:8] == "440304"
    assert uscc.is_valid(pinned)
    with pytest.raises(ValueError, match="six digits"):
        generator.credit_code("4403")


def test_company_names() -> None:
    generator = DemoGenerator(6)
    names = [generator.company_name("44") for _ in range(300)]
    assert all(CJK.match(name) and name.endswith("有限公司") for name in names)
    assert any(name.startswith(("广东", "广州", "深圳")) for name in names)
    assert len(set(names)) > 250


def test_case_numbers_basis_and_obligations() -> None:
    generator = DemoGenerator(8)
    assert re.fullmatch(r"（2024）京0105执\d+号", generator.case_number("京0105", 2024))
    assert re.fullmatch(r"（2023）粤03执恢\d+号", generator.case_number("粤03", 2023, "执恢"))
    court = next(c for c in demo_courts() if c.code == "京0105")
    issuers = Counter(generator.basis_document(court, 2023)[1] for _ in range(500))
    assert issuers["北京市朝阳区人民法院"] > 250
    assert any("仲裁" in issuer for issuer in issuers)
    text = generator.obligations(12_500_000)
    assert "人民币125,000.00元" in text
    assert text.startswith("被执行人")


def test_courts_are_real_and_consistent() -> None:
    courts = demo_courts()
    codes = [court.code for court in courts]
    assert len(codes) == len(set(codes))
    assert 40 <= len(courts) <= 60
    assert len({court.province_code for court in courts}) >= 20
    basic = [court for court in courts if len(court.code) == 5]
    assert len(basic) >= 30
    for court in courts:
        assert re.fullmatch(r"[\u4e00-\u9fff](\d{2}|\d{4})?", court.code)
        assert ABBREVIATIONS[court.code[0]] == court.province_code
        assert court.name.endswith("人民法院")
    for court in basic:
        division = court.province_code + court.code[1:]
        county = _current_county(division)
        assert county is not None, f"{court.code}: {division} is not a current county code"
        assert county in court.name, (court.code, county, court.name)
