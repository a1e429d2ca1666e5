"""Listing preparation (`registry/listings/prepare.py`) called directly: every rule a court's
submission meets before anything is stored, with the problem code and JSON pointer the
court gets back. No database, no server: the court is played with `cryptography` and the
reference RFC 8785 implementation, independent of the registry's own signing helpers."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.identity.crypto import BlindIndex, DataKeyring
from registry.listings.prepare import (
    PURPOSE_DEBTOR_ID,
    PURPOSE_REMOVAL,
    PURPOSE_SIGNED,
    KeyInfo,
    PrepareContext,
    Preparer,
    require_ascii_digits,
)
from registry.problems import Problem

# 20:00 on 15 January 2025 in Beijing: the registry's "today" is China's calendar day.
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
TODAY = date(2025, 1, 15)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(birth: date, sequence: str = "002", division: str = "110105") -> str:
    body = f"{division}{birth:%Y%m%d}{sequence}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


class Court:
    """A court with its signing key, registered in the context under `key_id`."""

    def __init__(self, code: str, key_id: str) -> None:
        self.code = code
        self.key_id = key_id
        self.private = Ed25519PrivateKey.generate()

    def key_info(self, **changes: Any) -> KeyInfo:
        values: dict[str, Any] = {
            "court_code": self.code,
            "public_key": self.private.public_key().public_bytes_raw(),
            "valid_from": NOW - timedelta(days=365),
            "valid_until": None,
            "revoked_at": None,
        } | changes
        return KeyInfo(**values)

    def sign(self, name: str, body: dict[str, Any], key_id: str | None = None) -> dict[str, Any]:
        value = base64.urlsafe_b64encode(self.private.sign(rfc8785.dumps(body))).rstrip(b"=").decode()
        return {name: body, "signature": {"key_id": key_id or self.key_id, "value": value}}


CHAOYANG = Court("京0105", "ck_chaoyang")
PUDONG = Court("沪0115", "ck_pudong")
DATA_KEY = os.urandom(32)
BLIND_KEY = os.urandom(32)


def preparer(**keys: KeyInfo) -> Preparer:
    context = PrepareContext(
        courts={"京0105": "11", "沪0115": "31"},
        keys={CHAOYANG.key_id: CHAOYANG.key_info(), PUDONG.key_id: PUDONG.key_info()} | keys,
        data_keys={"dk-test": DATA_KEY},
        active_data_key_id="dk-test",
        blind_index_key=BLIND_KEY,
        now=NOW,
    )
    return Preparer(context)


def listing(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "court_code": "京0105",
        "case_number": "（2024）京0105执1234号",
        "filed_on": "2024-03-05",
        "basis": {"document_number": "（2023）京0105民初5678号", "issuer": "北京市朝阳区人民法院"},
        "debtor": {"kind": "person", "name": "张三", "id_number": "11010519491231002X"},
        "obligations": "被执行人应于判决生效之日起十日内支付货款人民币一万二千五百元。",
        "amount_cents": 1_250_000,
        "performance": {"status": "none"},
        "grounds": ["able_but_refuses"],
        "listed_on": "2024-06-01",
        "submission_id": "chaoyang-2024-000001",
        "decision": {
            "document_number": "（2024）京0105执1234号",
            "decided_on": "2024-05-28",
            "initiated_by": "court_initiative",
        },
    }
    body.update(changes)
    if "listed_on" in changes and "decision" not in changes:
        body["decision"] = body["decision"] | {"decided_on": changes["listed_on"]}
    return body


def organization(**changes: Any) -> dict[str, Any]:
    debtor = {
        "kind": "organization",
        "name": "北京恒信达科技有限公司",
        "credit_code": "91110000600037341L",
        "legal_representative": "王建国",
    } | changes
    return listing(debtor=debtor)


def refused(envelope: Any, *, removal_of: str | None = None) -> Problem:
    with pytest.raises(Problem) as caught:
        if removal_of is None:
            preparer().listing(envelope)
        else:
            preparer().removal(envelope)(removal_of)
    return caught.value


def assert_refused(body: dict[str, Any], code: str, pointer: str | None, status: int = 422) -> None:
    problem = refused(CHAOYANG.sign("listing", body))
    assert (problem.status, problem.code, problem.pointer) == (status, code, pointer), problem.detail


# ---- what an accepted listing becomes ----


def test_an_accepted_listing_keeps_the_signed_bytes_encrypted_and_the_identifier_blind() -> None:
    body = listing()
    prepared = preparer().listing(CHAOYANG.sign("listing", body))
    signed = rfc8785.dumps(body)
    keyring = DataKeyring({"dk-test": DATA_KEY}, "dk-test")
    assert keyring.decrypt(prepared.signed_cipher, PURPOSE_SIGNED) == signed
    assert prepared.content_sha256 == hashlib.sha256(signed).digest()
    assert keyring.decrypt(prepared.debtor_id_cipher, PURPOSE_DEBTOR_ID) == b"11010519491231002X"
    assert prepared.debtor_id_blind == BlindIndex(BLIND_KEY)("11010519491231002X")
    assert prepared.debtor_id_masked == "11****1949********"  # province and birth year only
    assert (prepared.debtor_sex, prepared.debtor_birth_year) == ("F", 1949)
    assert prepared.debtor_id_type == "resident_id"
    assert (prepared.court_code, prepared.province_code, prepared.key_id) == ("京0105", "11", "ck_chaoyang")
    assert (prepared.term_years, prepared.expires_on) == (None, None)


def test_full_width_text_is_normalised_but_the_signature_covers_what_the_court_sent() -> None:
    body = listing(
        case_number="(２０２４)京０１０５执１２３４号",
        debtor={"kind": "person", "name": " 张　三 ", "id_number": "１１０１０５１９４９１２３１００２ｘ"},
    )
    prepared = preparer().listing(CHAOYANG.sign("listing", body))
    assert prepared.case_number == "（2024）京0105执1234号"
    assert prepared.debtor_name == "张 三"
    assert prepared.debtor_id_blind == BlindIndex(BLIND_KEY)("11010519491231002X")
    assert prepared.content_sha256 == hashlib.sha256(rfc8785.dumps(body)).digest()


def test_grounds_are_stored_in_the_order_of_the_provisions() -> None:
    body = listing(grounds=["breaches_settlement", "evades_enforcement"], term_years=2)
    assert preparer().listing(CHAOYANG.sign("listing", body)).grounds == [
        "evades_enforcement",
        "breaches_settlement",
    ]


def test_extra_fields_are_kept_in_the_signed_bytes() -> None:
    body = listing(court_reference="内部编号 17")
    prepared = preparer().listing(CHAOYANG.sign("listing", body))
    keyring = DataKeyring({"dk-test": DATA_KEY}, "dk-test")
    assert "内部编号 17" in keyring.decrypt(prepared.signed_cipher, PURPOSE_SIGNED).decode()


def test_an_organisation_is_listed_with_its_credit_code_and_representative() -> None:
    prepared = preparer().listing(CHAOYANG.sign("listing", organization(credit_code="91110000600037341l")))
    assert prepared.debtor_kind == "organization"
    # The type is bound into the index; the code is public registration data, shown in full.
    assert prepared.debtor_id_blind == BlindIndex(BLIND_KEY)("credit_code:91110000600037341L")
    assert prepared.debtor_id_masked == "91110000600037341L"
    assert prepared.legal_representative == "王建国"
    assert (prepared.debtor_sex, prepared.debtor_birth_year) == (None, None)


# ---- the envelope and the field types ----


@pytest.mark.parametrize("envelope", [[], "listing", {"listing": []}, {"signature": {}}])
def test_an_envelope_of_the_wrong_shape_is_invalid_field(envelope: Any) -> None:
    problem = refused(envelope)
    assert (problem.status, problem.code) == (422, "invalid_field")


@pytest.mark.parametrize(
    ("signature", "pointer"),
    [
        (None, "/signature"),
        ({"key_id": "ck_chaoyang"}, "/signature/value"),
        ({"key_id": "", "value": "x"}, "/signature/key_id"),
    ],
)
def test_a_missing_or_malformed_signature_is_invalid_field(signature: Any, pointer: str) -> None:
    problem = refused({"listing": listing(), "signature": signature})
    assert (problem.code, problem.pointer) == ("invalid_field", pointer)


@pytest.mark.parametrize(
    ("changes", "code", "pointer"),
    [
        ({"amount_cents": "12500"}, "invalid_field", "/listing/amount_cents"),
        ({"amount_cents": -1}, "invalid_field", "/listing/amount_cents"),
        ({"grounds": ["able_but_refuses", 2]}, "invalid_field", "/listing/grounds/1"),
        ({"grounds": []}, "invalid_field", "/listing/grounds"),
        ({"filed_on": "2024-02-30"}, "invalid_date", "/listing/filed_on"),
        ({"listed_on": "1 June 2024"}, "invalid_date", "/listing/listed_on"),
        ({"obligations": ""}, "invalid_field", "/listing/obligations"),
        ({"obligations": "欠" * 5001}, "invalid_field", "/listing/obligations"),
        ({"basis": {"issuer": "北京市朝阳区人民法院"}}, "invalid_field", "/listing/basis/document_number"),
        (
            {"debtor": {"kind": "robot", "name": "X", "id_number": "1"}},
            "invalid_field",
            "/listing/debtor/kind",
        ),
        ({"submission_id": None}, "invalid_field", "/listing/submission_id"),
    ],
)
def test_a_field_of_the_wrong_type_or_size_points_at_the_field(
    changes: dict[str, Any], code: str, pointer: str
) -> None:
    assert_refused(listing(**changes), code, pointer)


def test_an_amount_beyond_exact_json_numbers_has_no_canonical_form() -> None:
    problem = refused({"listing": listing(amount_cents=2**60), "signature": {"key_id": "k", "value": "v"}})
    assert problem.code == "invalid_field"
    assert "canonical" in problem.detail


@pytest.mark.parametrize("name", ["", "   ", "张\x00三", "张\x1b三"])
def test_an_empty_name_or_one_with_control_characters_is_refused(name: str) -> None:
    body = listing(debtor={"kind": "person", "name": name, "id_number": "11010519491231002X"})
    assert_refused(body, "invalid_field", "/listing/debtor/name")


# ---- court, case number and dates ----


@pytest.mark.parametrize(
    ("changes", "code", "pointer"),
    [
        (
            {"court_code": "京0106", "case_number": "（2024）京0106执1号"},
            "unknown_court",
            "/listing/court_code",
        ),
        ({"court_code": "北京朝阳"}, "invalid_court_code", "/listing/court_code"),
        ({"case_number": "（2024）沪0115执1234号"}, "case_number_court_mismatch", "/listing/case_number"),
        ({"case_number": "（2023）京0105执1234号"}, "case_number_year_mismatch", "/listing/case_number"),
        ({"case_number": "（2024）京0105民初1234号"}, "invalid_case_number", "/listing/case_number"),
        ({"case_number": "京0105执1234号"}, "invalid_case_number", "/listing/case_number"),
    ],
)
def test_court_and_case_number_rules(changes: dict[str, Any], code: str, pointer: str) -> None:
    assert_refused(listing(**changes), code, pointer)


@pytest.mark.parametrize("case_type", ["执保", "执异", "执复", "执监", "执协", "执他"])
def test_only_implementation_cases_can_carry_a_listing(case_type: str) -> None:
    problem = refused(CHAOYANG.sign("listing", listing(case_number=f"（2024）京0105{case_type}12号")))
    assert (problem.status, problem.code, problem.pointer) == (
        422,
        "case_not_enforcement",
        "/listing/case_number",
    )


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"filed_on": "1989-12-31", "case_number": "（1989）京0105执1号"}, "/listing/filed_on"),
        ({"filed_on": "2025-01-16", "case_number": "（2025）京0105执1号"}, "/listing/filed_on"),
        ({"listed_on": "2024-03-04"}, "/listing/listed_on"),  # before filing
        ({"listed_on": "2025-01-16"}, "/listing/listed_on"),  # tomorrow in Beijing
    ],
)
def test_dates_out_of_range_are_refused(changes: dict[str, Any], pointer: str) -> None:
    assert_refused(listing(**changes), "date_out_of_range", pointer)


def test_listing_today_in_beijing_is_accepted_although_it_is_still_yesterday_elsewhere() -> None:
    late = PrepareContext(
        courts={"京0105": "11"},
        keys={CHAOYANG.key_id: CHAOYANG.key_info()},
        data_keys={"dk-test": DATA_KEY},
        active_data_key_id="dk-test",
        blind_index_key=BLIND_KEY,
        now=datetime(2025, 1, 14, 16, 30, tzinfo=UTC),  # 00:30 on the 15th in Beijing
    )
    prepared = Preparer(late).listing(CHAOYANG.sign("listing", listing(listed_on="2025-01-15")))
    assert prepared.listed_on == date(2025, 1, 15)


# ---- grounds and terms (SPC Art. 1-2) ----


@pytest.mark.parametrize(
    ("grounds", "term", "code"),
    [
        (["able_but_refuses", "refuses_politely"], None, "unknown_ground"),
        (["evades_enforcement", "evades_enforcement"], 2, "invalid_field"),
        (["able_but_refuses"], 2, "term_invalid"),  # ground 1 alone has no fixed term
        (["evades_enforcement"], None, "term_invalid"),  # grounds 2-6 always have one
        (["evades_enforcement"], 1, "term_invalid"),
        (["obstructs_enforcement", "able_but_refuses"], 6, "term_invalid"),  # 2 years + at most 3
    ],
)
def test_grounds_and_terms_against_the_provisions(grounds: list[str], term: int | None, code: str) -> None:
    pointer = "/listing/grounds" if code in ("unknown_ground", "invalid_field") else "/listing/term_years"
    assert_refused(listing(grounds=grounds, term_years=term), code, pointer)


@pytest.mark.parametrize(
    ("listed_on", "term", "expires_on"),
    [
        ("2024-06-01", 2, date(2026, 6, 1)),
        ("2024-06-01", 5, date(2029, 6, 1)),
        ("2024-02-29", 3, date(2027, 2, 28)),  # no 29 February in 2027
    ],
)
def test_a_fixed_term_expires_on_the_same_calendar_day(listed_on: str, term: int, expires_on: date) -> None:
    body = listing(
        grounds=["breaches_consumption_restriction"],
        term_years=term,
        listed_on=listed_on,
        filed_on="2024-01-10",
    )
    if term > 2:
        body["extension"] = {
            "document_number": "（2024）京0105执1号",
            "decided_on": listed_on,
            "reason": "violence_or_threats",
        }
    prepared = preparer().listing(CHAOYANG.sign("listing", body))
    assert (prepared.term_years, prepared.expires_on) == (term, expires_on)


# ---- minors (SPC Art. 4) and birth dates ----


def person(birth: date, listed_on: date) -> dict[str, Any]:
    debtor = {"kind": "person", "name": "李四", "id_number": id_number(birth)}
    return listing(debtor=debtor, listed_on=listed_on.isoformat())


def test_a_debtor_a_day_short_of_eighteen_is_a_minor_and_never_listed() -> None:
    body = person(date(2006, 6, 2), listed_on=date(2024, 6, 1))
    assert_refused(body, "debtor_minor", "/listing/debtor/id_number")


def test_a_debtor_the_day_after_the_eighteenth_birthday_is_listed() -> None:
    body = person(date(2006, 5, 31), listed_on=date(2024, 6, 1))
    assert preparer().listing(CHAOYANG.sign("listing", body)).debtor_birth_year == 2006


def test_a_debtor_born_after_the_listing_date_is_refused() -> None:
    body = person(date(2024, 7, 1), listed_on=date(2024, 6, 1))
    assert_refused(body, "invalid_id_number", "/listing/debtor/id_number")


def test_a_debtor_on_the_eighteenth_birthday_is_still_a_minor() -> None:
    body = person(date(2006, 6, 1), listed_on=date(2024, 6, 1))
    assert_refused(body, "debtor_minor", "/listing/debtor/id_number")


@pytest.mark.parametrize(
    ("number", "code", "pointer"),
    [
        ("11010519491231002Y", "invalid_id_number", "/listing/debtor/id_number"),
        ("1101051949123100", "invalid_id_number", "/listing/debtor/id_number"),
    ],
)
def test_a_bad_id_number_is_refused(number: str, code: str, pointer: str) -> None:
    body = listing(debtor={"kind": "person", "name": "张三", "id_number": number})
    assert_refused(body, code, pointer)


def test_a_bad_credit_code_or_missing_representative_is_refused() -> None:
    assert_refused(
        organization(credit_code="91110000600037341M"), "invalid_credit_code", "/listing/debtor/credit_code"
    )
    without = organization()
    del without["debtor"]["legal_representative"]
    assert_refused(without, "invalid_field", "/listing/debtor/legal_representative")


# ---- amounts and performance ----


@pytest.mark.parametrize(
    ("amount", "performance"),
    [
        (1_250_000, {"status": "none", "performed_cents": 100}),  # nothing performed, yet an amount
        (1_250_000, {"status": "partial", "performed_cents": 250_000, "unperformed_cents": 900_000}),
    ],
)
def test_inconsistent_performance_is_refused(amount: int, performance: dict[str, Any]) -> None:
    body = listing(amount_cents=amount, performance=performance)
    assert_refused(body, "performance_inconsistent", "/listing/performance")


def test_an_unknown_performance_status_is_refused() -> None:
    assert_refused(listing(performance={"status": "done"}), "invalid_field", "/listing/performance")


@pytest.mark.parametrize(
    ("amount", "performance"),
    [
        (1_250_000, {"status": "partial", "performed_cents": 250_000, "unperformed_cents": 1_000_000}),
        (1_250_000, {"status": "partial", "performed_cents": 250_000}),  # one part alone
        (None, {"status": "partial", "performed_cents": 1, "unperformed_cents": 2}),  # no amount
        (1_250_000, {"status": "none", "performed_cents": 0}),
    ],
)
def test_consistent_performance_is_kept_as_sent(amount: int | None, performance: dict[str, Any]) -> None:
    prepared = preparer().listing(
        CHAOYANG.sign("listing", listing(amount_cents=amount, performance=performance))
    )
    assert prepared.details["amount_cents"] == amount
    for part in ("performed_cents", "unperformed_cents"):
        assert prepared.details["performance"][part] == performance.get(part)


# ---- the signature ----


def test_a_listing_changed_after_signing_is_signature_invalid() -> None:
    envelope = CHAOYANG.sign("listing", listing())
    envelope["listing"]["amount_cents"] += 1
    problem = refused(envelope)
    assert (problem.code, problem.pointer) == ("signature_invalid", "/signature/value")


def test_a_signature_over_non_canonical_bytes_is_signature_invalid() -> None:
    body = listing()
    sloppy = CHAOYANG.private.sign(repr(body).encode())
    value = base64.urlsafe_b64encode(sloppy).rstrip(b"=").decode()
    assert refused({"listing": body, "signature": {"key_id": CHAOYANG.key_id, "value": value}}).code == (
        "signature_invalid"
    )


@pytest.mark.parametrize("value", ["!!!", "YWJj*"])
def test_a_signature_that_is_not_base64url_is_signature_invalid(value: str) -> None:
    problem = refused({"listing": listing(), "signature": {"key_id": CHAOYANG.key_id, "value": value}})
    assert problem.code == "signature_invalid"


def test_padded_base64url_is_accepted_too() -> None:
    envelope = CHAOYANG.sign("listing", listing())
    envelope["signature"]["value"] += "=="
    assert preparer().listing(envelope).key_id == CHAOYANG.key_id


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ({"revoked_at": NOW - timedelta(seconds=1)}, "key_revoked"),
        ({"valid_until": NOW}, "key_expired"),
        ({"valid_from": NOW + timedelta(minutes=1)}, "key_expired"),
    ],
)
def test_a_key_revoked_or_outside_its_validity_is_refused(key: dict[str, Any], code: str) -> None:
    with pytest.raises(Problem) as caught:
        preparer(ck_chaoyang=CHAOYANG.key_info(**key)).listing(CHAOYANG.sign("listing", listing()))
    assert (caught.value.code, caught.value.pointer) == (code, "/signature/key_id")


def test_a_key_revoked_later_still_verifies_today() -> None:
    later = CHAOYANG.key_info(revoked_at=NOW + timedelta(days=1))
    assert preparer(ck_chaoyang=later).listing(CHAOYANG.sign("listing", listing())).key_id == "ck_chaoyang"


def test_an_unknown_key_or_another_courts_key_is_refused() -> None:
    assert refused(CHAOYANG.sign("listing", listing(), key_id="ck_nobody")).code == "unknown_key"
    # Pudong's key, registered to Pudong, signing a Chaoyang listing.
    assert refused(PUDONG.sign("listing", listing())).code == "key_court_mismatch"


def test_a_key_a_worker_was_not_given_is_looked_up_once_and_accepted() -> None:
    asked: list[str] = []
    context = PrepareContext(
        courts={"京0105": "11"},
        keys={},
        data_keys={"dk-test": DATA_KEY},
        active_data_key_id="dk-test",
        blind_index_key=BLIND_KEY,
        now=NOW,
    )
    lookup = Preparer(context, find_key=lambda key_id: asked.append(key_id) or CHAOYANG.key_info())
    for number in ("000001", "000002"):
        lookup.listing(CHAOYANG.sign("listing", listing(submission_id=number)))
    assert asked == ["ck_chaoyang"]


# ---- removals ----


def removal(**changes: Any) -> dict[str, Any]:
    body = {
        "listing_id": "01JABCDEFGHJKMNPQRSTVWXYZ0",
        "reason": "performed",
        "effective_on": "2025-01-10",
        "triggered_on": "2025-01-09",
        "basis_document": "（2024）京0105执恢12号之一",
    }
    return body | changes


def test_a_removal_is_verified_against_the_listing_court_and_kept_encrypted() -> None:
    body = removal(basis_document="(2024)京0105执恢12号之一")
    prepared = preparer().removal(CHAOYANG.sign("removal", body))("京0105")
    assert (prepared.reason, prepared.effective_on) == ("performed", date(2025, 1, 10))
    # A document number, as the listing's are: full-width brackets (the signed bytes keep ASCII).
    assert prepared.basis_document == "（2024）京0105执恢12号之一"
    keyring = DataKeyring({"dk-test": DATA_KEY}, "dk-test")
    assert keyring.decrypt(prepared.signed_cipher, PURPOSE_REMOVAL) == rfc8785.dumps(body)


def test_a_removal_signed_by_another_court_is_refused() -> None:
    assert refused(PUDONG.sign("removal", removal()), removal_of="京0105").code == "key_court_mismatch"


@pytest.mark.parametrize(
    ("changes", "code", "pointer"),
    [
        ({"reason": "paid_somehow"}, "unknown_reason", "/removal/reason"),
        ({"reason": "term_expired"}, "unknown_reason", "/removal/reason"),  # the registry's own reason
        ({"effective_on": "2025-01-16"}, "date_out_of_range", "/removal/effective_on"),
        ({"effective_on": "2025-13-01"}, "invalid_date", "/removal/effective_on"),
        ({"basis_document": "（٢٠٢٤）京0105执恢12号之一"}, "invalid_field", "/removal/basis_document"),
    ],
)
def test_bad_removals_are_refused(changes: dict[str, Any], code: str, pointer: str) -> None:
    problem = refused(CHAOYANG.sign("removal", removal(**changes)), removal_of="京0105")
    assert (problem.code, problem.pointer) == (code, pointer)


# ---- identifier-like text: ASCII after NFKC, or refused ----


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        (
            {"basis": {"document_number": "（٢٠٢٣）京0105民初5678号", "issuer": "北京市朝阳区人民法院"}},
            "/listing/basis/document_number",
        ),
        (
            {
                "decision": {
                    "document_number": "（२०२४）京0105执1234号",
                    "decided_on": "2024-06-01",
                    "initiated_by": "court_initiative",
                }
            },
            "/listing/decision/document_number",
        ),
        ({"submission_id": "sub-٣"}, "/listing/submission_id"),
        ({"submission_id": "提交-001"}, "/listing/submission_id"),
        ({"submission_id": "sub 1"}, "/listing/submission_id"),
        ({"submission_id": "\u3000"}, "/listing/submission_id"),
    ],
)
def test_document_numbers_and_submission_ids_with_other_digits_or_letters_are_refused(
    changes: dict[str, Any], pointer: str
) -> None:
    assert_refused(listing(**changes), "invalid_field", pointer)


def test_full_width_document_numbers_and_submission_ids_fold_to_ascii() -> None:
    body = listing(
        basis={"document_number": "（２０２３）京0105民初5678号", "issuer": "北京市朝阳区人民法院"},
        submission_id="ＳＵＢ－００１",
    )
    prepared = preparer().listing(CHAOYANG.sign("listing", body))
    assert prepared.submission_id == "SUB-001"
    assert prepared.details["basis"]["document_number"] == "（2023）京0105民初5678号"


def test_a_document_number_refuses_every_other_script_s_digit_and_keeps_ascii_ones() -> None:
    """Every decimal digit Unicode has (category Nd) outside ASCII, in a number otherwise
    valid, is refused; the ASCII digits and the Chinese around them pass as written."""
    others = [
        chr(point) for point in range(0x80, sys.maxunicode + 1) if unicodedata.category(chr(point)) == "Nd"
    ]
    assert len(others) > 600  # about 70 scripts' 0-9
    for digit in others:
        with pytest.raises(Problem) as refused:
            require_ascii_digits(f"(2024)京0105民初{digit}号", "/listing/basis/document_number")
        assert (refused.value.code, refused.value.pointer) == (
            "invalid_field",
            "/listing/basis/document_number",
        )
    assert require_ascii_digits("(2024)京0105民初27494号", "/x") == "(2024)京0105民初27494号"
    assert require_ascii_digits("第一号", "/x") == "第一号"  # Chinese numerals are words, not Nd digits
