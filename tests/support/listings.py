"""A court's steps over HTTP, shared by the tests of every package: publish (one or a
batch), amend, remove; and listing bodies with a chosen debtor name."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from registry.calendar import china_midnight
from registry.listings.prepare import add_months
from registry.listings.services import expire_due
from tests.support.harness import CourtHandle, Registry


def new_submission() -> str:
    return str(uuid.uuid4())


def publish_one(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> str:
    """POST /v1/listings as the court; expects 201 and returns the listing id."""
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, body))
    assert response.status_code == 201, response.text
    return str(response.json()["listing_id"])


def publish_many(registry: Registry, court: CourtHandle, bodies: list[dict[str, Any]]) -> list[str]:
    """POST /v1/listings/batch as the court; expects every one created, returns their ids in order."""
    envelopes = [registry.envelope(court, body) for body in bodies]
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r["outcome"] == "created" for r in results), results
    return [str(r["listing_id"]) for r in results]


def person_named(registry: Registry, court: CourtHandle, name: str, **overrides: Any) -> dict[str, Any]:
    """A valid listing of a person called `name`."""
    body = registry.person_listing(court, **overrides)
    body["debtor"] = {**body["debtor"], "name": name}
    return body


def passport_holder_named(registry: Registry, court: CourtHandle, name: str) -> dict[str, Any]:
    """A valid listing of a foreign person called `name`, identified by a passport: no sex or
    age is derived from that number."""
    body = registry.person_listing(court)
    body["debtor"] = {
        "kind": "person",
        "name": name,
        "id_type": "passport",
        "id_number": "E1234567",
        "nationality": "CAN",
    }
    return body


def organization_named(registry: Registry, court: CourtHandle, name: str) -> dict[str, Any]:
    """A valid listing of an organisation called `name`, with its own valid credit code."""
    while True:
        body = registry.listing(court)
        if body["debtor"]["kind"] == "organization":
            body["debtor"] = {**body["debtor"], "name": name}
            return body


def ending_today(registry: Registry, court: CourtHandle, **overrides: Any) -> dict[str, Any]:
    """A person listed for two years whose last day is today: the term runs to today's end
    (Civil Code Art. 203) and the listing leaves the list as tomorrow starts. A term that has
    ended is refused, so an expiry is tested by moving the registry's day on: `expire_tomorrow`."""
    listed = add_months(registry.today, -24)
    filed = listed - timedelta(days=10)
    fields: dict[str, Any] = {
        "grounds": ["evades_enforcement"],
        "term_years": 2,
        "filed_on": filed.isoformat(),
        "listed_on": listed.isoformat(),
        "case_number": registry.generator.case_number(court.code, filed.year),
    }
    return registry.person_listing(court, **(fields | overrides))


def expire_tomorrow(registry: Registry) -> int:
    """The expiry as it runs when tomorrow starts in China; returns how many terms ended."""
    tomorrow = registry.today + timedelta(days=1)
    with registry.engine.begin() as conn:
        return expire_due(conn, today=tomorrow, now=china_midnight(tomorrow))


def removal_body(
    listing_id: str, today: date, reason: str = "performed", overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "listing_id": listing_id,
        "reason": reason,
        "effective_on": today.isoformat(),
        "triggered_on": today.isoformat(),
        "basis_document": "（2024）京0105执恢12号之一",
    }
    body.update(overrides or {})
    return body


def post_removal(
    registry: Registry,
    court: CourtHandle,
    listing_id: str,
    body: dict[str, Any],
    signer: CourtHandle | None = None,
) -> httpx.Response:
    """The removal `body`, signed by `signer` (the court by default), posted by the court."""
    envelope = registry.envelope(signer or court, body, name="removal")
    with registry.http(court.api_key) as http:
        return http.post(f"/v1/listings/{listing_id}/removal", json=envelope)


def post_amendment(
    registry: Registry, court: CourtHandle, listing_id: str, body: dict[str, Any]
) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post(f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, body))


def amended_body(body: dict[str, Any]) -> dict[str, Any]:
    """The same listing as a new submission, a quarter of the amount now performed."""
    amount = body["amount_cents"]
    performed = amount // 4
    return dict(
        body,
        submission_id=new_submission(),
        obligations="被执行人应于判决生效之日起十日内向申请执行人支付货款人民币一万元及逾期付款违约金。已部分履行。",
        performance={
            "status": "partial",
            "performed_cents": performed,
            "unperformed_cents": amount - performed,
        },
    )
