"""Conformance with the SPC Provisions (法释〔2013〕17号, amended by 法释〔2017〕7号) as courts
apply them: one test per rule, named by article, through the live server. Every refusal is
checked for its status, stable code and JSON pointer, and for nothing written (the event log
head and the listing count are where they were). The finer cases of each rule are in
test_prepare.py (no server) and test_lifecycle.py; this suite is the index of the rules.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from registry.calendar import add_working_days, china_midnight
from registry.identity.signing import sign_envelope
from registry.listings.prepare import add_months
from tests.support.checks import bank
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import (
    ending_today,
    expire_tomorrow,
    new_submission,
    post_amendment,
    post_removal,
    publish_one,
    removal_body,
)

CREDITOR = {"name": "北京某某建设有限公司", "credit_code": "91110105MA01C9XK1T"}


def state(registry: Registry) -> tuple[int, int]:
    with registry.engine.connect() as conn:
        head = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
        listings = conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one()
    return int(head), int(listings)


def refused(
    registry: Registry,
    response: httpx.Response,
    before: tuple[int, int],
    status: int,
    code: str,
    pointer: str,
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["code"], problem.get("pointer")) == (code, pointer), problem
    assert state(registry) == before, "a refused request wrote something"


def post_listing(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post("/v1/listings", json=registry.envelope(court, body))


def assert_listing_refused(
    registry: Registry, court: CourtHandle, body: dict[str, Any], code: str, pointer: str, status: int = 422
) -> None:
    before = state(registry)
    refused(registry, post_listing(registry, court, body), before, status, code, pointer)


def applied(registry: Registry, court: CourtHandle, creditor: Any = None, **overrides: Any) -> dict[str, Any]:
    """A person listed on the creditor's application."""
    body = registry.person_listing(court, creditor=creditor or CREDITOR, **overrides)
    body["decision"] = body["decision"] | {"initiated_by": "creditor_application"}
    return body


# ---- Art. 1: grounds ----


def test_art1_only_the_six_grounds_of_article_1(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court, grounds=["owes_money"], term_years=None)
    assert_listing_refused(registry, court, body, "unknown_ground", "/listing/grounds")


# ---- Art. 2: terms ----


def test_art2_grounds_2_to_6_list_for_two_years_extendable_to_five(
    registry: Registry, court: CourtHandle
) -> None:
    for term in (1, 6):
        body = registry.person_listing(court, grounds=["evades_enforcement"], term_years=term)
        assert_listing_refused(registry, court, body, "term_invalid", "/listing/term_years")


def test_art2_ground_1_alone_has_no_fixed_term(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court, grounds=["able_but_refuses"], term_years=2)
    assert_listing_refused(registry, court, body, "term_invalid", "/listing/term_years")


def test_art2_a_term_that_has_ended_on_arrival_is_never_published(
    registry: Registry, court: CourtHandle
) -> None:
    # Listed two years ago yesterday: yesterday was the term's last day.
    listed = add_months(registry.today - timedelta(days=1), -24)
    body = ending_today(registry, court, listed_on=listed.isoformat())
    assert_listing_refused(registry, court, body, "term_already_ended", "/listing/term_years")
    # Listed two years ago today: today is its last day, which runs to its end (Civil Code
    # Art. 203), so it is published, until tomorrow's start.
    assert post_listing(registry, court, ending_today(registry, court)).status_code == 201


def test_art2_a_term_ends_on_its_last_day(registry: Registry, court: CourtHandle) -> None:
    body = ending_today(registry, court)
    listing_id = publish_one(registry, court, body)
    # Its last day runs to its end (Civil Code Art. 203): a bank checking today finds it.
    _, bank_http = bank(registry)
    with bank_http:
        check = {
            "purpose": "loan_application",
            "reference": "LA-1",
            "subjects": [{"id_number": body["debtor"]["id_number"]}],
        }
        assert bank_http.post("/v1/checks", json=check).json()["results"][0]["listed"] is True
    assert expire_tomorrow(registry) == 1
    with registry.http(court.api_key) as http:
        listing = http.get(f"/v1/listings/{listing_id}").json()
    assert listing["status"] == "expired" and listing["removal"]["effective_on"] == listing["expires_on"]
    assert listing["removal"]["on_time"] is True


def test_art2_listed_on_and_term_change_only_by_an_extension_of_at_most_five_years(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court, grounds=["evades_enforcement", "breaches_settlement"], term_years=2)
    listing_id = publish_one(registry, court, body)
    longer = dict(body, submission_id=new_submission(), term_years=4)
    before = state(registry)
    refused(
        registry,
        post_amendment(registry, court, listing_id, longer),
        before,
        422,
        "extension_required",
        "/listing/extension",
    )
    extension = {
        "document_number": body["case_number"],
        "decided_on": registry.today.isoformat(),
        "reason": "multiple_dishonest_acts",
    }
    too_long = dict(longer, term_years=6, extension=extension)
    refused(
        registry,
        post_amendment(registry, court, listing_id, too_long),
        before,
        422,
        "term_invalid",
        "/listing/term_years",
    )
    unknown = dict(longer, extension=extension | {"reason": "was_rude"})
    refused(
        registry,
        post_amendment(registry, court, listing_id, unknown),
        before,
        422,
        "invalid_field",
        "/listing/extension/reason",
    )
    extended = post_amendment(registry, court, listing_id, dict(longer, extension=extension))
    assert extended.status_code == 200, extended.text
    with registry.http(court.api_key) as http:
        listing = http.get(f"/v1/listings/{listing_id}").json()
    assert listing["term_years"] == 4
    assert listing["expires_on"] == add_months(date.fromisoformat(body["listed_on"]), 48).isoformat()
    assert listing["details"]["extension"] == extension


def test_art2_a_first_listing_over_two_years_carries_its_extension(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court, grounds=["evades_enforcement"], term_years=3, extension=None)
    del body["extension"]
    assert_listing_refused(registry, court, body, "extension_required", "/listing/extension")
    extension = {
        "document_number": body["case_number"],
        "decided_on": body["listed_on"],
        "reason": "violence_or_threats",
    }
    listing_id = publish_one(registry, court, dict(body, extension=extension))
    with registry.http(court.api_key) as http:
        listing = http.get(f"/v1/listings/{listing_id}").json()
    assert (listing["term_years"], listing["details"]["extension"]) == (3, extension)


def test_art2_a_fixed_term_never_becomes_none_by_amendment(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court, grounds=["evades_enforcement"], term_years=2)
    listing_id = publish_one(registry, court, body)
    open_ended = dict(body, submission_id=new_submission(), grounds=["able_but_refuses"], term_years=None)
    before = state(registry)
    refused(
        registry,
        post_amendment(registry, court, listing_id, open_ended),
        before,
        422,
        "term_change_needs_relisting",
        "/listing/term_years",
    )


# ---- Art. 4: minors (Civil Code Art. 201) ----


def test_art4_a_person_is_not_listed_on_the_18th_birthday(registry: Registry, court: CourtHandle) -> None:
    birthday = date.fromisoformat(registry.person_listing(court)["listed_on"])
    birth = add_months(birthday, -18 * 12)
    number = registry.generator.id_number(birth, birth, "M")
    body = registry.person_listing(court)
    body["debtor"] = {**body["debtor"], "id_number": number}
    assert_listing_refused(registry, court, body, "debtor_minor", "/listing/debtor/id_number")


# ---- Art. 5: the decision ----


def test_art5_a_listing_on_the_creditors_application_names_the_creditor(
    registry: Registry, court: CourtHandle
) -> None:
    body = applied(registry, court)
    del body["creditor"]
    assert_listing_refused(registry, court, body, "creditor_required", "/listing/creditor")


def test_art5_the_decision_precedes_the_listing(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    later = date.fromisoformat(body["listed_on"]) + timedelta(days=1)
    body["decision"] = body["decision"] | {"decided_on": later.isoformat()}
    assert_listing_refused(registry, court, body, "date_out_of_range", "/listing/decision/decided_on")


def test_art5_a_listing_without_its_decision_is_refused(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    del body["decision"]
    assert_listing_refused(registry, court, body, "invalid_field", "/listing/decision")


# ---- case numbers: only enforcement implementation cases ----


def test_only_zhi_and_zhi_hui_cases_carry_a_listing(registry: Registry, court: CourtHandle) -> None:
    for case_type in ("执保", "执异", "执复", "执监", "执协", "执他"):
        body = registry.person_listing(court)
        year = body["filed_on"][:4]
        body["case_number"] = f"（{year}）{court.code}{case_type}77号"
        assert_listing_refused(registry, court, body, "case_not_enforcement", "/listing/case_number")
    resumed = registry.person_listing(court)
    resumed["case_number"] = f"（{resumed['filed_on'][:4]}）{court.code}执恢77号"
    assert post_listing(registry, court, resumed).status_code == 201


def test_pre_2016_case_numbers_are_accepted_for_cases_filed_before_2016(
    registry: Registry, court: CourtHandle
) -> None:
    legacy = {
        "grounds": ["able_but_refuses"],
        "term_years": None,
        "filed_on": "2015-04-10",
        "listed_on": "2015-09-01",
        "case_number": "（2015）朝执字第01234号",
    }
    response = post_listing(registry, court, registry.person_listing(court, **legacy))
    assert response.status_code == 201, response.text
    # The abbreviation names another court.
    other = registry.person_listing(court, **(legacy | {"case_number": "（2015）浦执字第01234号"}))
    assert_listing_refused(registry, court, other, "case_number_court_mismatch", "/listing/case_number")
    # The old form for a case filed from 2016 on.
    late = registry.person_listing(
        court, **(legacy | {"filed_on": "2016-01-04", "case_number": "（2016）朝执字第00001号"})
    )
    assert_listing_refused(registry, court, late, "invalid_case_number", "/listing/case_number")
    # A pre-2016 preservation case carries no listing either.
    kept = registry.person_listing(court, **(legacy | {"case_number": "（2015）朝执保字第00002号"}))
    assert_listing_refused(registry, court, kept, "case_not_enforcement", "/listing/case_number")


# ---- Art. 6: amounts ----


def test_art6_performed_and_unperformed_never_exceed_the_amount(
    registry: Registry, court: CourtHandle
) -> None:
    over = {"status": "partial", "performed_cents": 2_000_000}
    body = registry.person_listing(court, amount_cents=1_000_000, performance=over)
    assert_listing_refused(registry, court, body, "performance_inconsistent", "/listing/performance")
    split = {"status": "partial", "performed_cents": 400_000, "unperformed_cents": 500_000}
    body = registry.person_listing(court, amount_cents=1_000_000, performance=split)
    assert_listing_refused(registry, court, body, "performance_inconsistent", "/listing/performance")


# ---- Art. 9-10: removals within three working days ----


def test_art10_a_removal_names_its_basis_and_the_day_its_condition_arose(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    for missing in ("basis_document", "triggered_on"):
        body = removal_body(listing_id, registry.today)
        del body[missing]
        before = state(registry)
        refused(
            registry,
            post_removal(registry, court, listing_id, body),
            before,
            422,
            "invalid_field",
            f"/removal/{missing}",
        )


def test_art10_the_deadline_is_three_working_days_and_late_removals_are_served(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court, grounds=["able_but_refuses"], term_years=None)
    listed = date.fromisoformat(body["listed_on"])
    late_id = publish_one(registry, court, body)
    on_time_id = publish_one(registry, court, registry.person_listing(court))
    triggered = max(listed, registry.today - timedelta(days=30))
    late = post_removal(
        registry,
        court,
        late_id,
        removal_body(late_id, registry.today, overrides={"triggered_on": str(triggered)}),
    )
    assert late.status_code == 200, late.text
    assert (
        post_removal(registry, court, on_time_id, removal_body(on_time_id, registry.today)).status_code == 200
    )

    with registry.http(court.api_key) as http:
        removal = http.get(f"/v1/listings/{late_id}").json()["removal"]
        answer = http.get("/v1/removals/late")
        assert answer.status_code == 200, answer.text
        page = answer.json()
    deadline = add_working_days(triggered, 3)
    assert removal["triggered_on"] == triggered.isoformat()
    assert removal["deadline_on"] == deadline.due.isoformat()
    assert removal["deadline_provisional"] is deadline.provisional
    assert removal["on_time"] is False
    assert [(r["listing_id"], r["deadline_on"]) for r in page["removals"]] == [
        (late_id, deadline.due.isoformat())
    ]
    assert page["total"] == 1 and page["removals"][0]["working_days_late"] >= 1
    assert [r["listing_id"] for r in admin.get("/v1/removals/late").json()["removals"]] == [late_id]
    other = registry.court("沪0115", "上海市浦东新区人民法院", "31")
    with registry.http(other.api_key) as http:
        assert http.get("/v1/removals/late").json() == {"removals": [], "total": 0}
        # A court sees its own whatever it asks for.
        assert http.get("/v1/removals/late", params={"court": court.code}).json()["total"] == 0
    assert admin.get("/v1/removals/late", params={"court": other.code}).json()["total"] == 0
    # Full-width digits fold as everywhere; a court no one has is said, not an empty page.
    assert admin.get("/v1/removals/late", params={"court": "京０１０５"}).json()["total"] == 1
    unknown = admin.get("/v1/removals/late", params={"court": "沪9999"})
    assert (unknown.status_code, unknown.json()["code"]) == (400, "unknown_court")


# ---- Art. 10: the creditor's six-month bar ----


def _removed_on_request(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> str:
    listing_id = publish_one(registry, court, body)
    # The court states a removal date long ago: the bar still runs from the registry's record.
    long_ago = max(date.fromisoformat(body["listed_on"]), registry.today - timedelta(days=365))
    removal = removal_body(listing_id, registry.today, reason="creditor_request")
    removal |= {"effective_on": long_ago.isoformat(), "triggered_on": long_ago.isoformat()}
    assert post_removal(registry, court, listing_id, removal).status_code == 200
    return listing_id


def _again(registry: Registry, court: CourtHandle, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The same debtor, in another case, listed today."""
    year = registry.today.year
    again = dict(
        body,
        submission_id=new_submission(),
        case_number=registry.generator.case_number(court.code, year),
        filed_on=registry.today.isoformat(),
        listed_on=registry.today.isoformat(),
    )
    again["decision"] = body["decision"] | {"decided_on": registry.today.isoformat()}
    return again | changes


def test_art10_the_bar_runs_from_the_recorded_removal_against_that_creditor_in_any_case(
    registry: Registry, court: CourtHandle
) -> None:
    body = applied(registry, court)
    _removed_on_request(registry, court, body)
    # Another case, the same creditor named differently: matched by its code.
    renamed = _again(registry, court, body, creditor=CREDITOR | {"name": "北京某某建设公司"})
    assert_listing_refused(registry, court, renamed, "relisting_barred", "/listing/creditor", status=409)


def test_art10_the_bar_matches_a_creditor_without_a_code_by_its_name(
    registry: Registry, court: CourtHandle
) -> None:
    body = applied(registry, court, creditor="张 伟")
    _removed_on_request(registry, court, body)
    assert_listing_refused(
        registry,
        court,
        _again(registry, court, body, creditor="张伟"),
        "relisting_barred",
        "/listing/creditor",
        status=409,
    )
    # Another creditor may apply.
    assert post_listing(registry, court, _again(registry, court, body, creditor="李娜")).status_code == 201


def test_art10_the_court_s_own_initiative_is_not_barred(registry: Registry, court: CourtHandle) -> None:
    body = applied(registry, court)
    _removed_on_request(registry, court, body)
    again = _again(registry, court, body)
    again["decision"] = again["decision"] | {"initiated_by": "court_initiative"}
    assert post_listing(registry, court, again).status_code == 201


def test_art10_the_bar_still_holds_on_its_last_day(registry: Registry, court: CourtHandle) -> None:
    body = applied(registry, court)
    listing_id = _removed_on_request(registry, court, body)

    def recorded(day: date) -> None:
        with registry.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE removals SET created_at = :at WHERE listing_id = :id"),
                {"at": _as_db(registry, china_midnight(day) + timedelta(hours=9)), "id": listing_id},
            )

    # Recorded six months ago today: today is the bar's last day (Civil Code Art. 201-202).
    recorded(add_months(registry.today, -6))
    assert_listing_refused(
        registry, court, _again(registry, court, body), "relisting_barred", "/listing/creditor", status=409
    )
    # A day earlier: the bar has run out.
    recorded(add_months(registry.today, -6) - timedelta(days=1))
    assert post_listing(registry, court, _again(registry, court, body)).status_code == 201


def _as_db(registry: Registry, moment: datetime) -> Any:
    # SQLite keeps naive UTC text; PostgreSQL an aware timestamp.
    return moment.replace(tzinfo=None) if registry.engine.dialect.name == "sqlite" else moment


# ---- I-JSON (RFC 7493) ----


def test_a_member_named_twice_in_a_signed_body_is_refused_before_the_signature(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    envelope = sign_envelope("listing", body, court.private_key, court.key_id)
    text = json.dumps(envelope, ensure_ascii=False)
    # The same member twice: one parser sees one name, another the other.
    twice = text.replace('"name": ', '"name": "王五", "name": ', 1)
    before = state(registry)
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings", content=twice.encode(), headers={"content-type": "application/json"}
        )
    refused(registry, response, before, 422, "duplicate_member", "/listing/debtor/name")
