"""The listing lifecycle over HTTP: amend, remove, re-list, expire; the event log; public keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.listings.jobs import expire_fixed_terms
from registry.runtime import Services
from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import (
    amended_body,
    ending_today,
    expire_tomorrow,
    new_submission,
    post_amendment,
    post_removal,
    publish_one,
    removal_body,
)

MISSING_ID = "01J0000000000000000000NONE"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _code(response: httpx.Response) -> str:
    return str(response.json()["code"])


def _head(admin: httpx.Client) -> int:
    response = admin.get("/v1/events", params={"limit": 1})
    assert response.status_code == 200, response.text
    return int(response.json()["head"])


def _all_events(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get("/v1/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _other_court(registry: Registry) -> CourtHandle:
    return registry.court("沪0115", "上海市浦东新区人民法院", "31")


# ---- amendment ----


def test_amendment_creates_version_2_and_keeps_verifiable_evidence_of_version_1(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    amended = amended_body(body)

    response = post_amendment(registry, court, listing_id, amended)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "amended"
    assert response.json()["version"] == 2
    assert response.json()["listing_id"] == listing_id

    with registry.http(court.api_key) as http:
        read = http.get(f"/v1/listings/{listing_id}").json()
        evidence = http.get(f"/v1/listings/{listing_id}/versions/1")
        evidence_2 = http.get(f"/v1/listings/{listing_id}/versions/2")
    assert read["version"] == 2 and read["status"] == "active"
    assert read["details"]["obligations"] == amended["obligations"]
    assert read["details"]["performance"] == amended["performance"]
    assert read["debtor"]["id_number"] == body["debtor"]["id_number"]
    assert [v["version"] for v in read["versions"]] == [1, 2]
    assert [v["submission_id"] for v in read["versions"]] == [body["submission_id"], amended["submission_id"]]
    assert read["versions"][0]["content_sha256"] != read["versions"][1]["content_sha256"]

    assert evidence.status_code == 200, evidence.text
    proof = evidence.json()
    assert proof["key_id"] == court.key_id
    assert json.loads(proof["signed_json"]) == body
    signed = proof["signed_json"].encode()
    court.private_key.public_key().verify(_b64url_decode(proof["signature"]), signed)
    assert (
        hashlib.sha256(signed).hexdigest() == proof["content_sha256"] == read["versions"][0]["content_sha256"]
    )

    assert evidence_2.status_code == 200, evidence_2.text
    assert json.loads(evidence_2.json()["signed_json"]) == amended
    court.private_key.public_key().verify(
        _b64url_decode(evidence_2.json()["signature"]), evidence_2.json()["signed_json"].encode()
    )


def test_identical_amendment_is_unchanged(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    amended = amended_body(body)
    assert post_amendment(registry, court, listing_id, amended).json()["outcome"] == "amended"
    head = _head(admin)

    again = post_amendment(registry, court, listing_id, amended)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "unchanged"
    assert again.json()["version"] == 2
    assert _head(admin) == head
    with registry.http(court.api_key) as http:
        assert len(http.get(f"/v1/listings/{listing_id}").json()["versions"]) == 2


def test_amendment_cannot_change_case_number_or_debtor_identity(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    head = _head(admin)

    other_case = registry.generator.case_number(court.code, int(body["filed_on"][:4]))
    assert other_case != body["case_number"]
    new_case = dict(body, submission_id=new_submission(), case_number=other_case)
    response = post_amendment(registry, court, listing_id, new_case)
    assert response.status_code == 422, response.text
    assert _code(response) == "immutable_field"

    other_person = registry.generator.id_number(date(1965, 1, 1), date(1985, 12, 31))
    assert other_person != body["debtor"]["id_number"]
    new_debtor = dict(
        body, submission_id=new_submission(), debtor=dict(body["debtor"], id_number=other_person)
    )
    response = post_amendment(registry, court, listing_id, new_debtor)
    assert response.status_code == 422, response.text
    assert _code(response) == "immutable_field"

    assert _head(admin) == head
    with registry.http(court.api_key) as http:
        read = http.get(f"/v1/listings/{listing_id}").json()
    assert read["version"] == 1 and len(read["versions"]) == 1
    assert read["case_number"] == body["case_number"]
    assert read["debtor"]["id_number"] == body["debtor"]["id_number"]


def test_another_court_cannot_amend(registry: Registry, court: CourtHandle, admin: httpx.Client) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    other = _other_court(registry)
    head = _head(admin)

    # Even a genuine envelope signed by the listing court, relayed by another court's client.
    with registry.http(other.api_key) as http:
        response = http.post(
            f"/v1/listings/{listing_id}/amendments", json=registry.envelope(court, amended_body(body))
        )
    assert response.status_code == 403, response.text
    assert _code(response) == "not_your_listing"
    assert _head(admin) == head


# ---- removal ----


def test_removal_marks_listing_removed_and_keeps_it(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    removal = removal_body(listing_id, registry.today, reason="performed")

    response = post_removal(registry, court, listing_id, removal)
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "removed"
    assert response.json()["listing_id"] == listing_id

    with registry.http(court.api_key) as http:
        read = http.get(f"/v1/listings/{listing_id}")
    assert read.status_code == 200, read.text
    listing = read.json()
    assert listing["status"] == "removed"
    assert listing["removal"]["reason"] == "performed"
    assert listing["removal"]["effective_on"] == registry.today.isoformat()
    assert listing["removal"]["key_id"] == court.key_id
    assert listing["debtor"]["id_number"] == body["debtor"]["id_number"]
    assert listing["case_number"] == body["case_number"]

    again = post_removal(registry, court, listing_id, removal)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "unchanged"


def test_removed_listing_refuses_further_changes(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    assert (
        post_removal(registry, court, listing_id, removal_body(listing_id, registry.today)).status_code == 200
    )

    different = post_removal(
        registry, court, listing_id, removal_body(listing_id, registry.today, reason="wrongly_listed")
    )
    assert different.status_code == 409, different.text
    assert _code(different) == "listing_not_active"

    amendment = post_amendment(registry, court, listing_id, amended_body(body))
    assert amendment.status_code == 409, amendment.text
    assert _code(amendment) == "listing_not_active"

    with registry.http(court.api_key) as http:
        read = http.get(f"/v1/listings/{listing_id}").json()
    assert read["removal"]["reason"] == "performed" and read["version"] == 1


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"reason": "paid_up"}, 422, "unknown_reason"),
        ({"reason": "term_expired"}, 422, "unknown_reason"),
        ({"effective_on": "FUTURE"}, 422, "date_out_of_range"),
        ({"listing_id": "OTHER"}, 422, "listing_id_mismatch"),
    ],
)
def test_invalid_removals_are_refused(
    registry: Registry,
    court: CourtHandle,
    admin: httpx.Client,
    overrides: dict[str, Any],
    status: int,
    code: str,
) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    other_id = publish_one(registry, court, registry.person_listing(court))
    if overrides.get("effective_on") == "FUTURE":
        overrides = {"effective_on": (registry.today + timedelta(days=1)).isoformat()}
    if overrides.get("listing_id") == "OTHER":
        overrides = {"listing_id": other_id}
    head = _head(admin)

    response = post_removal(
        registry, court, listing_id, removal_body(listing_id, registry.today, overrides=overrides)
    )
    assert response.status_code == status, response.text
    assert _code(response) == code
    assert _head(admin) == head
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/listings/{listing_id}").json()["status"] == "active"
        assert http.get(f"/v1/listings/{other_id}").json()["status"] == "active"


def test_removal_signed_with_another_courts_key_is_refused(registry: Registry, court: CourtHandle) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    other = _other_court(registry)

    response = post_removal(
        registry, court, listing_id, removal_body(listing_id, registry.today), signer=other
    )
    assert response.status_code == 422, response.text
    assert _code(response) == "key_court_mismatch"
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/listings/{listing_id}").json()["status"] == "active"


def test_another_courts_client_cannot_remove(registry: Registry, court: CourtHandle) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    other = _other_court(registry)

    envelope = registry.envelope(court, removal_body(listing_id, registry.today), name="removal")
    with registry.http(other.api_key) as http:
        response = http.post(f"/v1/listings/{listing_id}/removal", json=envelope)
    assert response.status_code == 403, response.text
    assert _code(response) == "not_your_listing"
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/listings/{listing_id}").json()["status"] == "active"


def test_removal_of_unknown_listing_is_404(registry: Registry, court: CourtHandle) -> None:
    response = post_removal(registry, court, MISSING_ID, removal_body(MISSING_ID, registry.today))
    assert response.status_code == 404, response.text
    assert _code(response) == "listing_not_found"


# ---- re-listing (SPC Provisions Art. 10) ----


def test_same_debtor_same_case_cannot_be_listed_twice_while_active(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)

    again = dict(body, submission_id=new_submission(), listed_on=registry.today.isoformat())
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, again))
    assert response.status_code == 409, response.text
    assert _code(response) == "already_listed"
    assert response.json()["listing_id"] == listing_id


def test_creditor_requested_removal_bars_relisting_for_six_months(
    registry: Registry, court: CourtHandle
) -> None:
    applied = {"initiated_by": "creditor_application"}
    body = registry.person_listing(court, creditor="北京某某建设有限公司")
    body["decision"] |= applied
    listing_id = publish_one(registry, court, body)
    removed = post_removal(
        registry, court, listing_id, removal_body(listing_id, registry.today, reason="creditor_request")
    )
    assert removed.status_code == 200, removed.text

    again = dict(body, submission_id=new_submission(), listed_on=registry.today.isoformat())
    again["decision"] = body["decision"] | {"decided_on": registry.today.isoformat()}
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, again))
    assert response.status_code == 409, response.text
    assert _code(response) == "relisting_barred"


def test_debtor_who_performed_can_be_listed_again(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    assert (
        post_removal(registry, court, listing_id, removal_body(listing_id, registry.today)).status_code == 200
    )

    again = dict(body, submission_id=new_submission(), listed_on=registry.today.isoformat())
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, again))
        assert response.status_code == 201, response.text
        new_id = response.json()["listing_id"]
        assert new_id != listing_id
        assert http.get(f"/v1/listings/{new_id}").json()["status"] == "active"
        assert http.get(f"/v1/listings/{listing_id}").json()["status"] == "removed"


# ---- expiry ----


def test_expiry_job_expires_ended_fixed_terms_only(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    fixed_id = publish_one(registry, court, ending_today(registry, court))
    open_ended = registry.person_listing(court, grounds=["able_but_refuses"], term_years=None)
    open_id = publish_one(registry, court, open_ended)

    services = Services.create(settings)
    try:
        # Public through its last day, today ...
        assert asyncio.run(expire_fixed_terms(services)) == 0
    finally:
        asyncio.run(services.close())
    # ... and gone as the next China day starts.
    assert expire_tomorrow(registry) == 1

    with registry.http(court.api_key) as http:
        gone = http.get(f"/v1/listings/{fixed_id}").json()
        kept = http.get(f"/v1/listings/{open_id}").json()
    assert gone["status"] == "expired"
    assert gone["removal"]["reason"] == "term_expired"
    assert gone["removal"]["effective_on"] == gone["expires_on"]
    assert kept["status"] == "active" and kept["removal"] is None

    events = [e for e in _all_events(admin) if e["type"] == "listing.expired"]
    assert [e["listing_id"] for e in events] == [fixed_id]
    assert events[0]["data"]["reason"] == "term_expired"


# ---- event log ----


def _populate(registry: Registry, court: CourtHandle, count: int = 6) -> list[dict[str, Any]]:
    bodies = [registry.person_listing(court) for _ in range(count)]
    ids = [publish_one(registry, court, body) for body in bodies]
    assert post_amendment(registry, court, ids[0], amended_body(bodies[0])).status_code == 200
    assert post_removal(registry, court, ids[1], removal_body(ids[1], registry.today)).status_code == 200
    return bodies


def test_event_log_is_gap_free_and_pages_exactly(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    _populate(registry, court)
    events = _all_events(admin)
    total = len(events)
    assert [e["seq"] for e in events] == list(range(1, total + 1))
    assert _head(admin) == total
    types = [e["type"] for e in events]
    assert types.count("listing.published") == 6
    assert types.count("listing.amended") == 1 and types.count("listing.removed") == 1

    paged: list[int] = []
    after = 0
    while True:
        page = admin.get("/v1/events", params={"after": after, "limit": 3})
        assert page.status_code == 200, page.text
        chunk = page.json()
        if not chunk["events"]:
            assert chunk["next_after"] == after
            break
        assert len(chunk["events"]) <= 3
        assert chunk["next_after"] == chunk["events"][-1]["seq"]
        assert chunk["events"] == events[len(paged) : len(paged) + len(chunk["events"])]
        paged.extend(e["seq"] for e in chunk["events"])
        after = chunk["next_after"]
    assert paged == list(range(1, total + 1))

    middle = admin.get("/v1/events", params={"after": 4, "limit": 2}).json()
    assert [e["seq"] for e in middle["events"]] == [5, 6]
    assert middle["next_after"] == 6 and middle["head"] == total


def test_event_log_is_for_admins_only(registry: Registry, court: CourtHandle) -> None:
    with registry.http(court.api_key) as http:
        response = http.get("/v1/events")
    assert response.status_code == 403, response.text
    assert _code(response) == "forbidden_role"
    with registry.http() as anonymous:
        assert anonymous.get("/v1/events").status_code == 401


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 5000}, {"after": -1}, {"after": "abc"}, {"limit": "many"}]
)
def test_event_log_rejects_bad_paging(admin: httpx.Client, params: dict[str, Any]) -> None:
    response = admin.get("/v1/events", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["code"]


def test_event_data_never_holds_debtor_identity(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    bodies = _populate(registry, court)
    organisation = next(
        b for b in (registry.listing(court) for _ in range(50)) if b["debtor"]["kind"] == "organization"
    )
    publish_one(registry, court, organisation)
    events = _all_events(admin)
    text = json.dumps([e["data"] for e in events], ensure_ascii=False)
    raw = admin.get("/v1/events", params={"limit": 1000}).text
    for body in [*bodies, organisation]:
        debtor = body["debtor"]
        identifier = debtor.get("id_number") or debtor["credit_code"]
        for secret in (identifier, debtor["name"]):
            assert secret not in text
            assert secret not in raw


# ---- courts ----


def test_courts_are_public_with_keys_that_verify_listings(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    with registry.http() as anonymous:
        response = anonymous.get("/v1/courts")
    assert response.status_code == 200, response.text
    [entry] = [c for c in response.json()["courts"] if c["code"] == court.code]
    assert entry["name"] == court.name and entry["province_code"] == court.province_code
    [key] = [k for k in entry["keys"] if k["key_id"] == court.key_id]
    assert key["alg"] == "Ed25519" and key["revoked_at"] is None
    public = Ed25519PublicKey.from_public_bytes(_b64url_decode(key["public_key"]))

    with registry.http(court.api_key) as http:
        proof = http.get(f"/v1/listings/{listing_id}/versions/1").json()
    public.verify(_b64url_decode(proof["signature"]), proof["signed_json"].encode())
