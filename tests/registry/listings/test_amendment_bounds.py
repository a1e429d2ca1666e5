"""What an amendment may not do that a new listing may not either, through the live server:
re-list a debtor for a creditor still barred (SPC Art. 10), or move a fixed term's last day
earlier or past five years from the debtor's first listing date (Art. 2). Each refusal is
checked for its status, code and pointer, and for nothing written."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from registry.listings.prepare import add_months
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import new_submission, post_amendment, post_removal, publish_one, removal_body

CREDITOR = {"name": "北京某某建设有限公司", "credit_code": "91110105MA01C9XK1T"}
OTHER_CREDITOR = {"name": "上海某某贸易有限公司", "credit_code": "91110000600037341L"}


def state(registry: Registry) -> tuple[int, int]:
    with registry.engine.connect() as conn:
        head = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
        versions = conn.execute(sa.text("SELECT count(*) FROM listing_versions")).scalar_one()
    return int(head), int(versions)


def assert_refused(
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
    assert state(registry) == before, "a refused amendment wrote something"


def read(registry: Registry, court: CourtHandle, listing_id: str) -> dict[str, Any]:
    with registry.http(court.api_key) as http:
        answer = http.get(f"/v1/listings/{listing_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ---- SPC Art. 10: the six-month bar holds on an amendment ----


def _on_application(body: dict[str, Any], creditor: dict[str, Any]) -> dict[str, Any]:
    return dict(
        body,
        submission_id=new_submission(),
        creditor=creditor,
        decision=body["decision"] | {"initiated_by": "creditor_application"},
    )


def _other_case_today(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> dict[str, Any]:
    """The same debtor in another case, listed today on the court's own initiative."""
    today = registry.today.isoformat()
    again = dict(
        body,
        submission_id=new_submission(),
        case_number=registry.generator.case_number(court.code, registry.today.year),
        filed_on=today,
        listed_on=today,
        decision=body["decision"] | {"decided_on": today, "initiated_by": "court_initiative"},
    )
    again.pop("creditor", None)
    if "extension" in again:
        again["extension"] = again["extension"] | {"decided_on": today}
    return again


def _removed_at_creditors_request(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> None:
    listing_id = publish_one(registry, court, body)
    removal = removal_body(listing_id, registry.today, reason="creditor_request")
    assert post_removal(registry, court, listing_id, removal).status_code == 200


def test_an_amendment_to_the_barred_creditors_application_is_refused_as_a_listing_is(
    registry: Registry, court: CourtHandle
) -> None:
    first = _on_application(registry.person_listing(court), CREDITOR)
    _removed_at_creditors_request(registry, court, first)
    # The court may list the debtor again on its own initiative (the bar is the creditor's) ...
    again = _other_case_today(registry, court, first)
    listing_id = publish_one(registry, court, again)
    # ... but not turn that listing into one on the barred creditor's application.
    before = state(registry)
    assert_refused(
        registry,
        post_amendment(registry, court, listing_id, _on_application(again, CREDITOR)),
        before,
        409,
        "relisting_barred",
        "/listing/creditor",
    )
    assert read(registry, court, listing_id)["version"] == 1
    # Another creditor's application is not barred.
    other = post_amendment(registry, court, listing_id, _on_application(again, OTHER_CREDITOR))
    assert other.status_code == 200, other.text
    assert other.json()["outcome"] == "amended"


def test_a_listing_already_on_that_creditors_application_is_amended_as_before(
    registry: Registry, court: CourtHandle
) -> None:
    """Listed on the creditor's application before another of its listings was removed at its
    request: amending it lists no one again (the bar is on re-listing)."""
    first = _on_application(registry.person_listing(court), CREDITOR)
    second = _on_application(_other_case_today(registry, court, first), CREDITOR)
    second_id = publish_one(registry, court, second)
    _removed_at_creditors_request(registry, court, first)
    amended = post_amendment(registry, court, second_id, dict(second, submission_id=new_submission()))
    assert amended.status_code == 200, amended.text
    assert amended.json()["outcome"] == "amended"


# ---- SPC Art. 2: a fixed term's last day on an amendment ----


def _fixed_term(registry: Registry, court: CourtHandle, term: int, listed: date) -> dict[str, Any]:
    """A person listed on `listed` for `term` years (over two: with its extension), the case
    filed and the decisions taken long enough before for `listed_on` to move earlier."""
    filed = listed - timedelta(days=200)
    decided = (filed + timedelta(days=1)).isoformat()
    body = registry.person_listing(
        court,
        grounds=["evades_enforcement", "breaches_settlement"],
        term_years=term,
        filed_on=filed.isoformat(),
        listed_on=listed.isoformat(),
        case_number=registry.generator.case_number(court.code, filed.year),
    )
    body["decision"] = body["decision"] | {"decided_on": decided}
    body["extension"] = {
        "document_number": body["case_number"],
        "decided_on": decided,
        "reason": "multiple_dishonest_acts",
    }
    return body


def test_an_amendment_never_moves_the_terms_last_day_past_five_years_or_earlier(
    registry: Registry, court: CourtHandle
) -> None:
    listed = registry.today - timedelta(days=540)
    body = _fixed_term(registry, court, 5, listed)
    listing_id = publish_one(registry, court, body)
    expires = add_months(listed, 60).isoformat()
    assert read(registry, court, listing_id)["expires_on"] == expires
    before = state(registry)
    # Listed again "later" for five years: the five years would restart.
    later = dict(
        body, submission_id=new_submission(), listed_on=(registry.today - timedelta(days=7)).isoformat()
    )
    assert_refused(
        registry,
        post_amendment(registry, court, listing_id, later),
        before,
        422,
        "term_invalid",
        "/listing/listed_on",
    )
    # Listed "earlier" for the same five years: the term would end sooner.
    earlier = dict(body, submission_id=new_submission(), listed_on=(listed - timedelta(days=146)).isoformat())
    assert_refused(
        registry,
        post_amendment(registry, court, listing_id, earlier),
        before,
        422,
        "term_invalid",
        "/listing/listed_on",
    )
    listing = read(registry, court, listing_id)
    assert (listing["listed_on"], listing["expires_on"]) == (listed.isoformat(), expires)


def test_the_five_years_count_from_the_first_listing_date_across_amendments(
    registry: Registry, court: CourtHandle
) -> None:
    listed = registry.today - timedelta(days=540)
    body = _fixed_term(registry, court, 3, listed)
    listing_id = publish_one(registry, court, body)
    moved = listed + timedelta(days=100)
    # Moved later and extended to four years: within five years of the first date.
    step = dict(body, submission_id=new_submission(), listed_on=moved.isoformat(), term_years=4)
    answer = post_amendment(registry, court, listing_id, step)
    assert answer.status_code == 200, answer.text
    listing = read(registry, court, listing_id)
    assert listing["expires_on"] == add_months(moved, 48).isoformat()
    assert listing["details"]["first_listed_on"] == listed.isoformat()
    # Five years from the moved date would end past five years from the first one.
    before = state(registry)
    longest = dict(step, submission_id=new_submission(), term_years=5)
    assert_refused(
        registry,
        post_amendment(registry, court, listing_id, longest),
        before,
        422,
        "term_invalid",
        "/listing/term_years",
    )
    # Five years from the first date is the longest term.
    back = dict(step, submission_id=new_submission(), listed_on=listed.isoformat(), term_years=5)
    answer = post_amendment(registry, court, listing_id, back)
    assert answer.status_code == 200, answer.text
    assert read(registry, court, listing_id)["expires_on"] == add_months(listed, 60).isoformat()
