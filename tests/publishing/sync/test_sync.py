"""Agency linkage sync: profiles, pull and acknowledgement, signed push delivery to real
HTTP receivers that fail, time out and recover, leases between workers, status."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from publishing.sync.delivery import deliver_due, dispatch_due, endpoint_clients
from publishing.sync.groupcommit import GroupCommit
from publishing.sync.notices import notice_reader
from publishing.sync.pool import AGENCY_POOL, group_commit, send_pool, send_pools
from registry.calendar import china_date, china_midnight, last_covered_year
from registry.clients.services import create_client
from registry.eventlog.readers import step
from registry.eventlog.types import LISTING_EVENTS
from registry.listings.disclosure import public_columns, public_entry
from registry.listings.models import Listing
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support import rfc9421
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import (
    amended_body,
    passport_holder_named,
    post_amendment,
    post_removal,
    publish_one,
    removal_body,
)
from tests.support.publishing import deliver_once
from tests.support.sync_receiver import Receiver, running_receiver

CREDIT_REFERENCE_FIELDS = {
    "id", "version", "status", "kind", "name", "identifier", "id_type", "sex", "birth_date",
    "legal_representative",
    "court_code", "court_name", "case_number", "basis_document_number", "basis_issuer", "obligations",
    "amount_cents", "performance", "grounds", "filed_on", "listed_on", "term_years", "expires_on", "removal",
}  # fmt: skip
HOUSING_FIELDS = {
    "id", "version", "status", "name", "credit_code", "id_type", "legal_representative", "court_code",
    "court_name",
    "case_number", "basis_document_number", "basis_issuer", "obligations", "amount_cents", "performance",
    "grounds", "listed_on", "removal",
}  # fmt: skip
ENTERPRISE_FIELDS = {
    "id", "version", "status", "kind", "name", "credit_code", "id_type", "legal_representative", "court_code",
    "court_name", "case_number", "grounds", "listed_on", "removal",
}  # fmt: skip
PUBLIC_FIELDS = {
    "id", "kind", "name", "sex", "age_at_publication", "id_type", "identifier_masked",
    "legal_representative", "court_code",
    "court_name", "province_code", "province", "case_number", "basis_document_number", "basis_issuer",
    "obligations", "amount_cents", "performance", "grounds", "filed_on", "published_on",
}  # fmt: skip
EVENT_FIELDS = {
    "seq", "idempotency_key", "type", "occurred_at", "listing_id", "listing_version", "listing", "removal",
}  # fmt: skip


def agency(registry: Registry, name: str = "中国人民银行征信中心") -> tuple[str, str]:
    with registry.engine.begin() as conn:
        return create_client(conn, name, "agency", None, actor="test", now=utcnow())


def org_listing(registry: Registry, court: CourtHandle) -> dict[str, Any]:
    while True:
        body = registry.listing(court)
        if body["debtor"]["kind"] == "organization":
            return body


def subscribe(admin: httpx.Client, client_id: str, profile: str, mode: str, url: str | None = None) -> str:
    body: dict[str, Any] = {"client_id": client_id, "profile": profile, "mode": mode}
    if url is not None:
        body["endpoint_url"] = url
    response = admin.post("/v1/sync/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def pull_all(http: httpx.Client, sub_id: str, after: int = 0) -> tuple[list[dict[str, Any]], int, str]:
    events: list[dict[str, Any]] = []
    texts = []
    while True:
        response = http.get(f"/v1/sync/{sub_id}/events", params={"after": after, "limit": 7})
        assert response.status_code == 200, response.text
        texts.append(response.text)
        page = response.json()
        events.extend(page["events"])
        if page["next_after"] == after:
            return events, after, "".join(texts)
        after = page["next_after"]


def log_events(admin: httpx.Client) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = admin.get("/v1/events", params={"limit": 1000}).json()["events"]
    return [e for e in events if e["type"] in LISTING_EVENTS]


def subscription_row(engine: sa.Engine, sub_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM sync_subscriptions WHERE id = :id"), {"id": sub_id}).one()


def log_head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def fast(settings: Settings, **changes: Any) -> Settings:
    """Short timeouts and back-offs; `changes` are fields of the sync settings."""
    values: dict[str, Any] = {
        "timeout_seconds": 0.5,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "batch_size": 3,
        "lease_seconds": 10.0,
        "max_attempts": 20,
    }
    values.update(changes)
    return settings.override(sync=values)


def pump(settings: Settings, done: Callable[[], bool], seconds: float = 60, owners: int = 1) -> None:
    """Run push passes (several workers concurrently when owners > 1) until `done()`."""

    async def main() -> None:
        services = Services.create(settings)
        try:
            deadline = time.monotonic() + seconds
            while not done():
                assert time.monotonic() < deadline, "delivery did not finish in time"
                await asyncio.gather(*(deliver_due(services, f"test-worker-{n}") for n in range(owners)))
                await asyncio.sleep(0.02)
        finally:
            await services.close()

    asyncio.run(main())


def caught_up(engine: sa.Engine, sub_id: str) -> Callable[[], bool]:
    return lambda: int(subscription_row(engine, sub_id).cursor) >= log_head(engine)


def assert_in_order_per_listing(events: list[dict[str, Any]]) -> None:
    last: dict[str, int] = {}
    for event in events:
        assert event["seq"] > last.get(event["listing_id"], 0), "events of one listing out of order"
        last[event["listing_id"]] = event["seq"]


# ---- profiles ----


def test_every_profile_sends_exactly_its_fields(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    person = registry.person_listing(court)
    org = org_listing(registry, court)
    person_id = publish_one(registry, court, person)
    org_id = publish_one(registry, court, org)
    assert post_removal(registry, court, org_id, removal_body(org_id, registry.today)).status_code == 200
    client_id, key = agency(registry)
    subs = {p: subscribe(admin, client_id, p, "pull") for p in
            ("credit_reference", "housing_construction", "enterprise_supervision", "public")}  # fmt: skip

    with registry.http(key) as http:
        pulled = {profile: pull_all(http, sub) for profile, sub in subs.items()}

    for profile, (events, _, _) in pulled.items():
        for event in events:
            assert set(event) == EVENT_FIELDS, profile
            assert event["idempotency_key"] == f"{subs[profile]}:{event['seq']}"

    # credit reference (Art. 13): both debtors, full identifiers, every event.
    events, _, text = pulled["credit_reference"]
    assert [(e["listing_id"], e["type"]) for e in events] == [
        (person_id, "listing.published"), (org_id, "listing.published"), (org_id, "listing.removed"),
    ]  # fmt: skip
    by_id = {e["listing_id"]: e["listing"] for e in events}
    assert set(by_id[person_id]) == CREDIT_REFERENCE_FIELDS
    assert by_id[person_id]["identifier"] == person["debtor"]["id_number"]
    assert by_id[person_id]["name"] == person["debtor"]["name"]
    assert by_id[person_id]["legal_representative"] is None
    record = by_id[person_id]
    assert record["kind"] == "person" and record["status"] == "active" and record["version"] == 1
    assert record["court_code"] == court.code and record["court_name"] == court.name
    assert record["case_number"] == person["case_number"]
    assert record["basis_document_number"] == person["basis"]["document_number"]
    assert record["amount_cents"] == person.get("amount_cents")
    assert record["grounds"] == person["grounds"] and record["term_years"] == person.get("term_years")
    assert record["filed_on"] == person["filed_on"] and record["listed_on"] == person["listed_on"]
    assert record["performance"]["status"] == person["performance"]["status"]
    assert (
        record["sex"] in ("M", "F")
        and record["birth_date"][4:].replace("-", "") == person["debtor"]["id_number"][10:14]
    )
    assert record["removal"] is None
    assert (record["expires_on"] is None) == (record["term_years"] is None)
    assert by_id[org_id]["identifier"] == org["debtor"]["credit_code"]
    assert by_id[org_id]["legal_representative"] == org["debtor"]["legal_representative"]
    assert by_id[org_id]["status"] == "removed" and by_id[org_id]["removal"]["reason"] == "performed"
    assert events[2]["removal"] == {"reason": "performed", "effective_on": registry.today.isoformat()}

    # housing and construction (Art. 12): organisations only, legal representative, obligations.
    events, _, text = pulled["housing_construction"]
    assert [(e["listing_id"], e["type"]) for e in events] == [
        (org_id, "listing.published"),
        (org_id, "listing.removed"),
    ]
    record = events[0]["listing"]
    assert set(record) == HOUSING_FIELDS
    assert record["credit_code"] == org["debtor"]["credit_code"]
    assert record["obligations"] == unicodedata.normalize("NFKC", org["obligations"])
    assert person["debtor"]["id_number"] not in text and person["debtor"]["name"] not in text

    # enterprise supervision (Art. 17; Company Law Art. 178 for persons): no obligations or
    # amounts (tests/publishing/sync/test_special_profiles.py checks the persons' fields).
    events, _, text = pulled["enterprise_supervision"]
    assert [e["listing_id"] for e in events] == [person_id, org_id, org_id]
    assert set(events[1]["listing"]) == ENTERPRISE_FIELDS
    assert unicodedata.normalize("NFKC", org["obligations"]) not in text
    assert unicodedata.normalize("NFKC", person["obligations"]) not in text

    # public: exactly the public allow-list; a removed listing's data no longer leaves.
    events, _, text = pulled["public"]
    assert [(e["listing_id"], e["type"]) for e in events] == [
        (person_id, "listing.published"), (org_id, "listing.published"), (org_id, "listing.removed"),
    ]  # fmt: skip
    with registry.engine.connect() as conn:
        row = conn.execute(public_columns().where(Listing.id == person_id)).one()
    expected = json.loads(msgspec.json.encode(public_entry(row, china_date(utcnow()))))
    assert events[0]["listing"] == expected
    assert set(events[0]["listing"]) == PUBLIC_FIELDS
    assert events[1]["listing"] is None and events[2]["listing"] is None
    assert person["debtor"]["id_number"] not in text
    assert org["debtor"]["credit_code"] not in text
    for profile, (_, _, text) in pulled.items():
        if "creditor" in person:
            assert person["creditor"]["name"] not in text, profile
        assert "signature" not in text and "submission_id" not in text, profile


# ---- pull and acknowledgement ----


def test_pull_ack_moves_the_cursor_and_refuses_what_was_never_delivered(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    ids = [publish_one(registry, court, registry.listing(court)) for _ in range(3)]
    client_id, key = agency(registry)
    other_id, other_key = agency(registry, "住房和城乡建设部")
    sub = subscribe(admin, client_id, "credit_reference", "pull")
    with registry.http(key) as http:
        # Nothing handed out yet: no acknowledgement can be taken.
        refused = http.post(f"/v1/sync/{sub}/ack", json={"cursor": 1})
        assert refused.status_code == 409 and refused.json()["code"] == "cursor_not_delivered"
        page = http.get(f"/v1/sync/{sub}/events", params={"limit": 1000}).json()
        assert [e["listing_id"] for e in page["events"]] == ids
        head = page["next_after"]
        beyond = http.post(f"/v1/sync/{sub}/ack", json={"cursor": head + 1})
        assert beyond.status_code == 409 and beyond.json()["code"] == "cursor_not_delivered"
        assert subscription_row(registry.engine, sub).cursor == 0
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": "x"}).json()["code"] == "invalid_field"
        assert http.post(f"/v1/sync/{sub}/ack", content=b"{").json()["code"] == "invalid_json"
        assert http.get(f"/v1/sync/{sub}/events", params={"after": 10**9}).status_code == 422

        middle = page["events"][1]["seq"]
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": middle}).status_code == 200
        # Without `after`, the feed resumes after the acknowledged cursor.
        rest = http.get(f"/v1/sync/{sub}/events").json()["events"]
        assert [e["listing_id"] for e in rest] == ids[2:]
        behind = http.post(f"/v1/sync/{sub}/ack", json={"cursor": middle - 1})
        assert behind.status_code == 409 and behind.json()["code"] == "cursor_behind"
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": head}).status_code == 200
    status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    assert status["cursor"] == head and status["backlog"] == log_head(registry.engine) - head
    assert status["delivered_total"] == 3 and status["latency_seconds"]["samples"] == 3

    # Another agency cannot read or acknowledge this subscription; a bank cannot either.
    with registry.http(other_key) as http:
        assert http.get(f"/v1/sync/{sub}/events").status_code == 404
        assert (
            http.post(f"/v1/sync/{sub}/ack", json={"cursor": head}).json()["code"] == "subscription_not_found"
        )
    with registry.http(registry.client("bank")) as http:
        assert http.get(f"/v1/sync/{sub}/events").status_code == 403
    assert other_id != client_id


def test_an_ack_that_names_its_cursor_twice_is_refused_and_moves_nothing(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """`{"cursor": 1, "cursor": 2}` was taken as 2 (msgspec keeps the last): which cursor the
    agency meant is ambiguous (I-JSON, RFC 7493), and the cursor holds it to what it applied."""
    publish_one(registry, court, registry.listing(court))
    publish_one(registry, court, registry.listing(court))
    client_id, key = agency(registry)
    sub = subscribe(admin, client_id, "credit_reference", "pull")
    with registry.http(key) as http:
        page = http.get(f"/v1/sync/{sub}/events", params={"limit": 1000}).json()
        first, last = page["events"][0]["seq"], page["next_after"]
        for body in (
            f'{{"cursor": {first}, "cursor": {last}}}',
            f'{{"cursor": {first}, "\\u0063ursor": {last}}}',
        ):
            refused = http.post(
                f"/v1/sync/{sub}/ack", content=body.encode(), headers={"content-type": "application/json"}
            )
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert (refused.json()["code"], refused.json()["pointer"]) == ("duplicate_member", "/cursor")
        assert subscription_row(registry.engine, sub).cursor == 0
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": last}).status_code == 200
    assert subscription_row(registry.engine, sub).cursor == last


PUSH = {"profile": "credit_reference", "mode": "push"}
PULL = {"profile": "credit_reference", "mode": "pull"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**PUSH, "endpoint_url": "http://agency.example/hook"}, 422, "invalid_endpoint_url"),
        ({**PUSH, "endpoint_url": "ftp://agency.example/"}, 422, "invalid_endpoint_url"),
        ({**PUSH, "endpoint_url": "https://u:p@agency.example/"}, 422, "invalid_endpoint_url"),
        ({**PUSH, "endpoint_url": "https:///nohost"}, 422, "invalid_endpoint_url"),
        ({**PUSH, "endpoint_url": "https://a.example:99999/"}, 422, "invalid_endpoint_url"),
        (PUSH, 422, "endpoint_required"),
        ({**PULL, "endpoint_url": "https://a.example/"}, 422, "endpoint_not_allowed"),
        ({"profile": "tax_bureau", "mode": "pull"}, 422, "unknown_profile"),
        ({"profile": "public", "mode": "carrier_pigeon"}, 422, "unknown_mode"),
        ({"profile": "public", "mode": "pull", "from_seq": 10**6}, 422, "cursor_beyond_head"),
        ({"profile": "public", "mode": "pull", "colour": "red"}, 422, "invalid_field"),
    ],
)  # fmt: skip
def test_bad_subscriptions_are_refused_and_nothing_is_written(
    registry: Registry, admin: httpx.Client, body: dict[str, Any], status: int, code: str
) -> None:
    client_id, _ = agency(registry)
    head = log_head(registry.engine)
    response = admin.post("/v1/sync/subscriptions", json={"client_id": client_id, **body})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert admin.get("/v1/sync/subscriptions").json() == []
    assert log_head(registry.engine) == head


def test_only_agencies_subscribe_and_only_admins_administer(registry: Registry, admin: httpx.Client) -> None:
    bank_key = registry.client("bank")
    with registry.engine.connect() as conn:
        bank_id = conn.execute(sa.text("SELECT id FROM api_clients WHERE role = 'bank'")).scalar_one()
    response = admin.post(
        "/v1/sync/subscriptions", json={"client_id": bank_id, "profile": "public", "mode": "pull"}
    )
    assert response.status_code == 422 and response.json()["code"] == "not_an_agency"
    missing = admin.post(
        "/v1/sync/subscriptions", json={"client_id": "cl_nobody", "profile": "public", "mode": "pull"}
    )
    assert missing.status_code == 404
    client_id, key = agency(registry)
    with registry.http(key) as http:
        forbidden = http.post(
            "/v1/sync/subscriptions", json={"client_id": client_id, "profile": "public", "mode": "pull"}
        )
        assert forbidden.status_code == 403
        assert http.get("/metrics").status_code == 403
    with registry.http(bank_key) as http:
        assert http.get("/v1/sync/status").status_code == 403
    assert admin.post("/v1/sync/subscriptions/sub_nope/pause").status_code == 404


# ---- push delivery ----


def _jwks(registry: Registry) -> dict[str, Any]:
    with registry.http() as http:
        jwks: dict[str, Any] = http.get("/.well-known/jwks.json").json()
    return jwks


def _lifecycle(registry: Registry, court: CourtHandle, count: int) -> list[str]:
    """`count` listings, one amended, two removed: every kind of listing event."""
    bodies = [registry.listing(court) for _ in range(count)]
    ids = [publish_one(registry, court, body) for body in bodies]
    assert post_amendment(registry, court, ids[0], amended_body(bodies[0])).status_code == 200
    for listing_id in (ids[1], ids[0]):
        assert (
            post_removal(registry, court, listing_id, removal_body(listing_id, registry.today)).status_code
            == 200
        )
    return ids


def _verify_all(receiver: Receiver, jwks: dict[str, Any], key_id: str) -> None:
    """Every push verifies with the independent RFC 9421 verifier and the published key."""
    assert receiver.deliveries
    for delivery in receiver.deliveries:
        verified = rfc9421.verify(
            delivery.headers, delivery.body, jwks, method="POST", target_uri=receiver.url,
            tag="defaulter-registry-push",
        )  # fmt: skip
        assert verified.params["keyid"] == key_id
        assert verified.params["alg"] == "ed25519"
        assert isinstance(verified.params["created"], int) and verified.params["nonce"]
        assert {"@method", "@target-uri", "content-digest", "content-type", "idempotency-key"} <= set(
            verified.components
        )
        events = json.loads(delivery.body)["events"]
        first, last = events[0]["seq"], events[-1]["seq"]
        assert delivery.headers["idempotency-key"].endswith(f":{first}-{last}")


def test_push_survives_500s_timeouts_and_dropped_connections_exactly_once_in_order(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    ids = _lifecycle(registry, court, 8)
    client_id, _ = agency(registry)
    with running_receiver(slow_seconds=1.0) as receiver:
        receiver.script.extend(["500", "ok", "slow", "close", "500", "ok", "500"])
        sub = subscribe(admin, client_id, "credit_reference", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, sub))
    expected = [e["seq"] for e in log_events(admin)]
    unique = receiver.unique()
    # Every event exactly once after deduplication, none missing, in log order per listing
    # (a removal of a listing already acknowledged may come ahead: test_removal_lane.py).
    assert sorted(e["seq"] for e in unique) == expected
    assert_in_order_per_listing(unique)
    assert len(receiver.received) > len(unique), "the slow answer should have caused a re-send"
    assert {e["listing_id"] for e in unique} == set(ids)
    assert [e["type"] for e in unique if e["listing_id"] == ids[0]] == [
        "listing.published", "listing.amended", "listing.removed",
    ]  # fmt: skip
    _verify_all(receiver, _jwks(registry), _jwks(registry)["keys"][0]["kid"])
    status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    assert status["backlog"] == 0 and status["state"] == "active"
    assert status["failures_total"] == 5  # three 500s, one timed out, one dropped
    assert status["delivered_total"] >= len(expected)
    assert status["last_error"] is None and status["latency_seconds"]["samples"] == len(ids)


def test_a_tampered_push_fails_the_independent_verifier(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)
    with running_receiver() as receiver:
        sub = subscribe(admin, client_id, "public", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, sub))
    jwks = _jwks(registry)
    delivery = receiver.deliveries[0]
    rfc9421.verify(delivery.headers, delivery.body, jwks, method="POST", target_uri=receiver.url)
    with pytest.raises(rfc9421.VerificationError):
        rfc9421.verify(delivery.headers, delivery.body.replace(b"listing", b"listinG"), jwks,
                       method="POST", target_uri=receiver.url)  # fmt: skip
    with pytest.raises(rfc9421.VerificationError):
        rfc9421.verify(delivery.headers, delivery.body, jwks, method="POST", target_uri=receiver.url + "x")


def test_a_receiver_that_keeps_failing_flags_the_subscription_and_replay_recovers(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    _lifecycle(registry, court, 4)
    client_id, _ = agency(registry)
    with running_receiver(default="500") as receiver:
        sub = subscribe(admin, client_id, "credit_reference", "push", receiver.url)
        pump(
            fast(settings, max_attempts=3),
            lambda: subscription_row(registry.engine, sub).state == "failing",
        )
        flagged = admin.get(f"/v1/sync/subscriptions/{sub}").json()
        assert flagged["state"] == "failing" and flagged["attempts"] == 3
        # Only the events no agency receives (court and client set-up) were passed over.
        assert 0 < flagged["cursor"] < log_events(admin)[0]["seq"]
        assert flagged["last_error"] == "HTTP 500"
        metrics = admin.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        labels = f'client="{client_id}",mode="push",profile="credit_reference",subscription="{sub}"'
        assert f"registry_sync_failing{{{labels}}} 1.0" in metrics.text
        # A failing subscription is left alone until an admin acts.
        requests_so_far = len(receiver.deliveries)
        asyncio.run(deliver_once(fast(settings)))
        assert len(receiver.deliveries) == requests_so_far

        receiver.default = "ok"
        replayed = admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": 0})
        assert replayed.status_code == 200 and replayed.json()["state"] == "active"
        pump(fast(settings), caught_up(registry.engine, sub))
    assert [e["seq"] for e in receiver.unique()] == [e["seq"] for e in log_events(admin)]
    assert admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": -1}).status_code == 422


def test_paused_subscriptions_wait_and_profiles_skip_what_they_do_not_admit(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    persons = [publish_one(registry, court, registry.person_listing(court)) for _ in range(3)]
    org = publish_one(registry, court, org_listing(registry, court))
    client_id, _ = agency(registry, "住房和城乡建设部")
    with running_receiver() as receiver:
        sub = subscribe(admin, client_id, "housing_construction", "push", receiver.url)
        assert admin.post(f"/v1/sync/subscriptions/{sub}/pause").json()["state"] == "paused"
        asyncio.run(deliver_once(fast(settings)))
        assert receiver.deliveries == []
        assert admin.post(f"/v1/sync/subscriptions/{sub}/resume").json()["state"] == "active"
        pump(fast(settings), caught_up(registry.engine, sub))
    assert [e["listing_id"] for e in receiver.unique()] == [org]
    assert not set(persons) & {e["listing_id"] for e in receiver.received}
    assert subscription_row(registry.engine, sub).cursor == log_head(registry.engine)


def test_concurrent_workers_never_send_one_subscription_at_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    for _ in range(12):
        publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)
    with running_receiver(default="sleep:0.05") as first, running_receiver(default="sleep:0.05") as second:
        subs = [subscribe(admin, client_id, "credit_reference", "push", r.url) for r in (first, second)]
        pump(
            fast(settings, batch_size=2),
            lambda: all(caught_up(registry.engine, s)() for s in subs),
            owners=4,
        )
    for receiver in (first, second):
        assert receiver.max_in_flight == 1
        assert [e["seq"] for e in receiver.unique()] == [e["seq"] for e in log_events(admin)]
        assert len(receiver.received) == len(receiver.unique())  # no duplicate without a failure


def test_worker_passes_keep_each_endpoints_client_and_commit_cursor_moves_together(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    """The worker's passes (`dispatch_due`, as `registry worker` runs them) build each
    endpoint's client once for the process, not once per pass (building one loaded the trust
    store: 1.3-1.7 s on a loaded machine), and the writes of subscriptions in step share
    transactions; every receiver still gets every event, in order, once."""
    client_id, _ = agency(registry)
    with running_receiver() as a, running_receiver() as b, running_receiver() as c:
        subs = [subscribe(admin, client_id, "credit_reference", "push", r.url) for r in (a, b, c)]

        async def main() -> tuple[int, int, int]:
            services = Services.create(fast(settings, batch_size=2))
            try:
                async with send_pools(services):
                    for _ in range(3):  # three rounds of new listings, each sent by new passes
                        for _ in range(3):
                            await asyncio.to_thread(publish_one, registry, court, registry.listing(court))
                        deadline = time.monotonic() + 60
                        while not all(caught_up(registry.engine, s)() for s in subs):
                            assert time.monotonic() < deadline, "delivery did not finish in time"
                            await dispatch_due(services)
                            await send_pool(services, AGENCY_POOL).wait()
                    writes = group_commit(services)
                    return endpoint_clients(services).made, writes.writes, writes.transactions
            finally:
                await services.close()

        made, writes, transactions = asyncio.run(main())
    # One client per endpoint for the process; once per pass would be 3 per round at least.
    assert made == 3
    # Claims, cursor moves and releases of three subscriptions in step: fewer transactions.
    assert transactions < writes, (transactions, writes)
    expected = [e["seq"] for e in log_events(admin)]
    for receiver in (a, b, c):
        assert [e["seq"] for e in receiver.unique()] == expected
        assert len(receiver.received) == len(expected)  # nothing sent twice without a failure


def test_a_failing_write_in_a_group_commit_fails_alone(settings: Settings) -> None:
    """One write of a shared transaction raising rolls back the transaction, then the others
    commit on their own: only its caller sees the error, nothing of it is written."""

    def note(conn: sa.Connection, name: str) -> str:
        conn.execute(sa.text("INSERT INTO ts_probe (name) VALUES (:n)"), {"n": name})
        return name

    def broken(conn: sa.Connection) -> str:
        note(conn, "broken")
        raise ValueError("refused")

    async def main() -> tuple[list[Any], list[str], int]:
        services = Services.create(settings)
        try:
            await services.db.write(lambda c: c.execute(sa.text("CREATE TABLE ts_probe (name TEXT)")))
            writes = GroupCommit(services.db)
            results = await asyncio.gather(
                writes.write(note, "first"), writes.write(broken), writes.write(note, "second"),
                return_exceptions=True,
            )  # fmt: skip
            names = await services.db.read(
                lambda c: [str(r[0]) for r in c.execute(sa.text("SELECT name FROM ts_probe ORDER BY name"))]
            )
            await services.db.write(lambda c: c.execute(sa.text("DROP TABLE ts_probe")))
            return list(results), names, writes.transactions
        finally:
            await services.close()

    results, names, transactions = asyncio.run(main())
    assert results[0] == "first" and results[2] == "second"
    assert isinstance(results[1], ValueError)
    assert names == ["first", "second"]
    assert transactions == 4  # the shared one, rolled back, then each alone


def test_a_range_is_read_and_rendered_once_per_profile_not_once_per_subscription(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    """Three receivers of one profile and one of another: each log range is read (and its
    listings loaded, decrypted, rendered) once per profile, and every subscription still
    gets every event it admits, under its own idempotency keys."""
    for _ in range(10):
        publish_one(registry, court, registry.listing(court))
    publish_one(registry, court, org_listing(registry, court))
    client_id, _ = agency(registry)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # A range read loads whole events; the removal lane's look for removals ahead
        # (their seq and listing id only) is not one.
        if "FROM events" in statement and "events.seq >" in statement and "events.data" in statement:
            reads.append(statement)

    sa.event.listen(sa.Engine, "before_cursor_execute", count)
    try:
        with (
            running_receiver() as a,
            running_receiver() as b,
            running_receiver() as c,
            running_receiver() as enterprise,
        ):
            subs = [subscribe(admin, client_id, "credit_reference", "push", r.url) for r in (a, b, c)]
            subs.append(subscribe(admin, client_id, "enterprise_supervision", "push", enterprise.url))
            pump(fast(settings, batch_size=3), lambda: all(caught_up(registry.engine, s)() for s in subs))
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", count)
    last_seq = log_head(registry.engine)
    ranges_per_profile = -(-last_seq // 3) + 1  # the last read finds the head
    # Once per subscription would be 4 x ranges_per_profile.
    assert len(reads) <= 2 * ranges_per_profile, (len(reads), ranges_per_profile)
    expected = [e["seq"] for e in log_events(admin)]
    for sub, receiver in zip(subs[:3], (a, b, c), strict=True):
        unique = receiver.unique()
        assert [e["seq"] for e in unique] == expected
        assert {e["idempotency_key"] for e in unique} == {f"{sub}:{seq}" for seq in expected}
    # The other profile's subscription got its own rendering of the same ranges: every event,
    # organisations with their codes, and only the enterprise profile's fields.
    assert [e["seq"] for e in enterprise.unique()] == expected
    assert [
        e["listing"]["credit_code"] for e in enterprise.unique() if e["listing"]["kind"] == "organization"
    ]
    organisations = [e for e in enterprise.unique() if e["listing"]["kind"] == "organization"]
    assert all(set(e["listing"]) == ENTERPRISE_FIELDS for e in organisations)


def test_status_json_and_prometheus_metrics(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    for _ in range(3):
        publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)
    pulled = subscribe(admin, client_id, "public", "pull")
    with running_receiver() as receiver:
        pushed = subscribe(admin, client_id, "credit_reference", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, pushed))
    statuses = {s["id"]: s for s in admin.get("/v1/sync/status").json()["subscriptions"]}
    head = log_head(registry.engine)
    assert statuses[pushed]["backlog"] == 0 and statuses[pushed]["last_delivered_seq"] == head
    assert statuses[pushed]["latency_seconds"]["samples"] == 3
    assert statuses[pushed]["latency_seconds"]["p99"] is not None
    assert statuses[pulled]["backlog"] == head and statuses[pulled]["latency_seconds"]["p50"] is None
    text = admin.get("/metrics").text
    labels = f'client="{client_id}",mode="pull",profile="public",subscription="{pulled}"'
    assert f"registry_sync_backlog_events{{{labels}}} {float(head)}" in text
    assert (
        f'registry_sync_latency_seconds{{client="{client_id}",mode="push",profile="credit_reference",quantile="0.99",subscription="{pushed}"}}'
        in text
    )


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.slow
def test_a_worker_killed_mid_delivery_loses_nothing(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    for _ in range(16):
        publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)
    env = cli_env(settings) | {
        "REGISTRY_SYNC_LEASE_SECONDS": "2",
        "REGISTRY_SYNC_BATCH_SIZE": "2",
        "REGISTRY_SYNC_INTERVAL_SECONDS": "0.2",
        "REGISTRY_LOG_LEVEL": "WARNING",
    }

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen([registry_bin(), "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    with running_receiver(default="sleep:0.2") as receiver:
        sub = subscribe(admin, client_id, "credit_reference", "push", receiver.url)
        worker = start_worker()
        try:
            _wait(lambda: len(receiver.deliveries) >= 3 and receiver.in_flight == 1, 60, "a push in flight")
            os.kill(worker.pid, signal.SIGKILL)  # in the middle of a request
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        killed_at = subscription_row(registry.engine, sub)
        assert killed_at.cursor < log_head(registry.engine), "the kill should leave work behind"
        assert killed_at.lease_owner is not None  # the dead worker's lease, left to run out

        restarted = start_worker()
        try:
            _wait(caught_up(registry.engine, sub), 90, "the restarted worker to catch up")
        finally:
            restarted.terminate()
            restarted.wait(timeout=10)
    unique = receiver.unique()
    assert [e["seq"] for e in unique] == [e["seq"] for e in log_events(admin)]
    assert_in_order_per_listing(unique)
    _verify_all(receiver, _jwks(registry), _jwks(registry)["keys"][0]["kid"])


# ---- reconciliation ----


def _snapshot(
    http: httpx.Client, sub: str, jwks: dict[str, Any], limit: int
) -> tuple[list[dict[str, Any]], list[int]]:
    records: list[dict[str, Any]] = []
    positions: list[int] = []
    after = ""
    while True:
        response = http.get(f"/v1/sync/{sub}/snapshot", params={"after": after, "limit": limit})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-ndjson"
        headers = dict(response.headers.items())
        verified = rfc9421.verify(
            headers, response.content, jwks, status=200, tag="defaulter-registry-response"
        )
        assert {"@status", "content-type", "content-digest"} <= set(verified.components)
        header, *lines = [json.loads(line) for line in response.content.splitlines()]
        assert header["kind"] == "snapshot" and header["count"] == len(lines)
        positions.append(header["position"])
        records.extend(line["listing"] for line in lines)
        if header["next_after"] is None:
            return records, positions
        after = header["next_after"]


def test_signed_snapshot_pages_hold_every_active_listing_of_the_profile(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    persons = [publish_one(registry, court, registry.person_listing(court)) for _ in range(3)]
    orgs = [publish_one(registry, court, org_listing(registry, court)) for _ in range(4)]
    assert post_removal(registry, court, orgs[0], removal_body(orgs[0], registry.today)).status_code == 200
    client_id, key = agency(registry)
    credit = subscribe(admin, client_id, "credit_reference", "pull")
    housing = subscribe(admin, client_id, "housing_construction", "push", "https://agency.example/hook")
    jwks = _jwks(registry)
    with registry.http(key) as http:
        records, positions = _snapshot(http, credit, jwks, limit=2)
        assert [r["id"] for r in records] == sorted(persons + orgs[1:])
        assert set(records[0]) == CREDIT_REFERENCE_FIELDS
        assert positions == [log_head(registry.engine)] * 4
        housing_records, _ = _snapshot(http, housing, jwks, limit=1000)
        assert [r["id"] for r in housing_records] == sorted(orgs[1:])
        assert set(housing_records[0]) == HOUSING_FIELDS
        # A tampered page fails verification.
        response = http.get(f"/v1/sync/{credit}/snapshot")
        with pytest.raises(rfc9421.VerificationError):
            rfc9421.verify(dict(response.headers.items()), response.content + b" ", jwks, status=200)
        assert http.get(f"/v1/sync/{credit}/snapshot", params={"limit": 0}).status_code == 400
        # A cursor is an id: control and format characters are refused as in every id.
        for after in ("a\u202eb", "a\u0001b", "a\u200bb"):
            refused = http.get(f"/v1/sync/{credit}/snapshot", params={"after": after})
            assert refused.status_code == 400, after
    _, other_key = agency(registry, "住房和城乡建设部")
    with registry.http(other_key) as http:
        assert http.get(f"/v1/sync/{credit}/snapshot").status_code == 404
        assert http.get(f"/v1/sync/{credit}/drift").status_code == 404


# Cursors no snapshot page hands out, made from a real listing id.
BAD_SNAPSHOT_CURSORS: dict[str, Callable[[str], str]] = {
    "arabic-indic-digit": lambda _: "٣",
    "float": lambda _: "1e400",
    "huge-number": lambda _: "99999999999999999999999",
    "number": lambda _: "3",
    "word": lambda _: "abc",
    "lowercase": str.lower,
    "trailing-space": lambda id_: id_ + " ",
    "leading-space": lambda id_: " " + id_,
    "line-separator": lambda id_: id_ + "\u2028",
    "too-long": lambda id_: id_ + "0",
    "too-short": lambda id_: id_[:-1],
    "past-128-bits": lambda id_: "8" + id_[1:],
    "not-crockford": lambda id_: id_[:-1] + "U",
}


@pytest.mark.parametrize("bad", list(BAD_SNAPSHOT_CURSORS))
def test_a_snapshot_cursor_that_no_page_hands_out_is_400_not_an_empty_last_page(
    registry: Registry, court: CourtHandle, admin: httpx.Client, bad: str
) -> None:
    """`after` is a `next_after`: a listing id. Anything else read as a cursor past every
    listing, answered 200 with no listing and `next_after: null`: the agency's copy complete."""
    listing_id = publish_one(registry, court, registry.listing(court))
    client_id, key = agency(registry)
    sub = subscribe(admin, client_id, "credit_reference", "pull")
    with registry.http(key) as http:
        after = BAD_SNAPSHOT_CURSORS[bad](listing_id)
        refused = http.get(f"/v1/sync/{sub}/snapshot", params={"after": after})
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert (refused.json()["code"], refused.json()["pointer"]) == ("invalid_parameter", "/query/after")


def test_a_snapshot_cursor_given_twice_is_400_repeated_parameter(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    first = publish_one(registry, court, registry.listing(court))
    second = publish_one(registry, court, registry.listing(court))
    client_id, key = agency(registry)
    sub = subscribe(admin, client_id, "credit_reference", "pull")
    with registry.http(key) as http:
        for query in (f"after={first}&after={second}", f"after=&after={first}"):
            refused = http.get(f"/v1/sync/{sub}/snapshot?{query}")
            assert refused.status_code == 400, refused.text
            assert (refused.json()["code"], refused.json()["pointer"]) == (
                "repeated_parameter",
                "/query/after",
            )
        # Given once: none (the first page), a listing id, any well-formed id (past the last here).
        for after, count in (("", 2), (min(first, second), 1), ("7" + "Z" * 25, 0)):
            answer = http.get(f"/v1/sync/{sub}/snapshot", params={"after": after})
            assert answer.status_code == 200, answer.text
            assert json.loads(answer.content.splitlines()[0])["count"] == count


def test_drift_report_names_what_the_agency_lacks_and_clears_after_replay(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    first = [publish_one(registry, court, registry.listing(court)) for _ in range(3)]
    client_id, key = agency(registry)
    sub = subscribe(admin, client_id, "credit_reference", "pull")
    with registry.http(key) as http:
        _, cursor, _ = pull_all(http, sub)
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": cursor}).status_code == 200
        clean = http.get(f"/v1/sync/{sub}/drift").json()
        assert clean["in_drift"] == 0 and clean["active_in_agreement"] == 3

        # Unacknowledged changes are pending, not drift.
        assert (
            post_removal(registry, court, first[0], removal_body(first[0], registry.today)).status_code == 200
        )
        added = publish_one(registry, court, registry.listing(court))
        pending = http.get(f"/v1/sync/{sub}/drift").json()
        assert pending["pending_listings"] == 2 and pending["in_drift"] == 0

        # An operator skips the agency past those events: now they are drift.
        skipped = admin.post(
            f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": log_head(registry.engine)}
        )
        assert skipped.status_code == 200
        report = admin.get(f"/v1/sync/subscriptions/{sub}/drift").json()
        assert report["drift"] == {
            "missing_at_agency": 1,
            "not_removed_at_agency": 1,
            "outdated_at_agency": 0,
        }
        assert report["samples"]["missing_at_agency"] == [added]
        assert report["samples"]["not_removed_at_agency"] == [first[0]]

        # Replaying from the old cursor repairs it.
        admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": cursor})
        _, head, _ = pull_all(http, sub, cursor)
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": head}).status_code == 200
        repaired = http.get(f"/v1/sync/{sub}/drift").json()
        assert repaired["in_drift"] == 0 and repaired["active_in_agreement"] == 3


# ---- assistance notices ----


def test_assistance_notices_acknowledged_objected_routed_and_overdue(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    credit_id, credit_key = agency(registry)
    housing_id, housing_key = agency(registry, "住房和城乡建设部")
    subscribe(admin, credit_id, "credit_reference", "pull")
    subscribe(admin, housing_id, "housing_construction", "push", "https://housing.example/hook")
    person = registry.person_listing(court)
    org = org_listing(registry, court)
    person_id = publish_one(registry, court, person)
    org_id = publish_one(registry, court, org)
    assert post_removal(registry, court, org_id, removal_body(org_id, registry.today)).status_code == 200
    issued_at = utcnow() - timedelta(days=30)  # long past the deadline
    count = "SELECT count(*) FROM assistance_notices"
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), issued_at) > 0
        assert conn.execute(sa.text(count)).scalar_one() == 5  # credit: person, org, org lifted; housing: 2
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), issued_at) == 0  # the reader's cursor moved
        assert conn.execute(sa.text(count)).scalar_one() == 5

    with registry.http(credit_key) as http:
        own = http.get("/v1/notices").json()
        assert [(n["listing_id"], n["kind"]) for n in own] == [
            (person_id, "impose"), (org_id, "impose"), (org_id, "lift"),
        ]  # fmt: skip
        notice = http.get(f"/v1/notices/{own[0]['id']}").json()
        assert notice["court_name"] == court.name and notice["case_number"] == person["case_number"]
        assert notice["debtor"]["identifier"] == person["debtor"]["id_number"]
        assert notice["measures"] == ["将被执行人的未履行信息纳入企业和个人信用信息基础数据库（第十三条）"]
        assert notice["overdue"] is True
        printed = http.get(f"/v1/notices/{own[0]['id']}/print")
        assert printed.status_code == 200 and printed.headers["content-type"].startswith("text/html")
        assert notice["case_number"] in printed.text
        assert court.name in printed.text and "协助执行通知书" in printed.text
        # Words people read: field names, sex and grounds in Chinese, times in China time.
        assert "<th>性别</th><td>" + {"M": "男", "F": "女"}[notice["debtor"]["sex"]] in printed.text
        assert "<th>失信被执行人行为具体情形</th>" in printed.text and "（北京时间）" in printed.text
        for code in ("<th>sex</th>", "<th>grounds</th>", "able_but_refuses", "evades_enforcement"):
            assert code not in printed.text
        lift = http.get(f"/v1/notices/{own[2]['id']}").json()
        assert lift["measures"] == ["解除依前次协助执行通知采取的上述措施（第二十一条）"]
        acked = http.post(f"/v1/notices/{own[0]['id']}/acknowledge")
        assert acked.status_code == 200 and acked.json()["acknowledged_at"] is not None
        assert http.post(f"/v1/notices/{own[0]['id']}/acknowledge").json() == acked.json()  # idempotent

    with registry.http(housing_key) as http:
        mine = http.get("/v1/notices").json()
        assert [(n["listing_id"], n["kind"]) for n in mine] == [(org_id, "impose"), (org_id, "lift")]
        notice = http.get(f"/v1/notices/{mine[0]['id']}").json()
        assert set(notice["debtor"]) == HOUSING_FIELDS and len(notice["measures"]) == 2
        # Someone else's notice: refused, nothing recorded.
        refused = http.post(f"/v1/notices/{own[1]['id']}/objection", json={"text": "不属于本部门职责"})
        assert refused.status_code == 404 and refused.json()["code"] == "notice_not_found"
        assert http.get(f"/v1/notices/{own[1]['id']}").status_code == 404
        for blank in ("  ", "\u3000\u3000"):  # an ideographic space says nothing either
            assert (
                http.post(f"/v1/notices/{mine[0]['id']}/objection", json={"text": blank}).status_code == 422
            )
        assert http.post(f"/v1/notices/{mine[0]['id']}/objection", json={}).status_code == 422
        with registry.http(court.api_key) as court_http:
            assert court_http.get("/v1/notices/objections").json() == []
        filed = http.post(
            f"/v1/notices/{mine[0]['id']}/objection", json={"text": "该企业已完成产权转移，请法院审查"}
        )
        # As the agency wrote it: its full-width comma is the court's to read, not folded.
        assert filed.status_code == 201 and filed.json()["objection"] == "该企业已完成产权转移，请法院审查"
        again = http.post(f"/v1/notices/{mine[0]['id']}/objection", json={"text": "再次异议"})
        assert again.status_code == 409 and again.json()["code"] == "already_objected"
        assert "异议" in http.get(f"/v1/notices/{mine[0]['id']}/print").text

    # The objection reaches the listing court (not another court); the measure stands:
    # the notice is still owed, so it is overdue with the others not acknowledged.
    with registry.http(court.api_key) as http:
        routed = http.get("/v1/notices/objections").json()
        assert [(n["id"], n["client_id"]) for n in routed] == [(mine[0]["id"], housing_id)]
    other = registry.court("沪0115", "上海市浦东新区人民法院", "31")
    with registry.http(other.api_key) as http:
        assert http.get("/v1/notices/objections").json() == []
    overdue = admin.get("/v1/notices/overdue").json()
    assert {n["id"] for n in overdue} == {own[1]["id"], own[2]["id"], mine[0]["id"], mine[1]["id"]}
    with registry.http(credit_key) as http:
        assert http.get("/v1/notices/overdue").status_code == 403


def test_the_printed_notice_names_the_identifier_s_type_in_words(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    credit_id, credit_key = agency(registry)
    subscribe(admin, credit_id, "credit_reference", "pull")
    publish_one(registry, court, registry.person_listing(court))
    publish_one(registry, court, org_listing(registry, court))
    publish_one(registry, court, passport_holder_named(registry, court, "欧阳明"))
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), utcnow()) > 0
    with registry.http(credit_key) as http:
        printed, numbers = {}, {}
        for summary in http.get("/v1/notices").json():
            debtor = http.get(f"/v1/notices/{summary['id']}").json()["debtor"]
            printed[debtor["id_type"]] = http.get(f"/v1/notices/{summary['id']}/print").text
            numbers[debtor["id_type"]] = debtor["identifier"]
    assert set(printed) == {"resident_id", "credit_code", "passport"}  # the JSON keeps the codes
    for code, words in (
        ("resident_id", "居民身份证"),
        ("credit_code", "统一社会信用代码"),
        ("passport", "护照"),
    ):
        assert f"<th>证件类型</th><td>{words}</td>" in printed[code]
        assert f"<td>{code}</td>" not in printed[code]
    # The passport's country by name on paper; the JSON keeps the code.
    assert numbers["passport"] == "CAN:E1234567"
    assert "<td>加拿大 E1234567</td>" in printed["passport"] and "CAN" not in printed["passport"]


def test_a_notice_is_due_at_the_end_of_its_third_working_day_on_china_s_calendar(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    credit_id, credit_key = agency(registry)
    subscribe(admin, credit_id, "credit_reference", "pull")
    publish_one(registry, court, registry.person_listing(court))
    # Tuesday 29 September 2026, 10:00 in China: Wed 30, then National Day (1-7 October) is
    # off, so the three working days are 30 September, 8 and 9 October.
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), datetime(2026, 9, 29, 2, 0, tzinfo=UTC)) > 0
    with registry.http(credit_key) as http:
        [notice] = http.get("/v1/notices").json()
    assert notice["due_at"] == "2026-10-09T16:00:00.000000Z"  # midnight ending 9 October in China
    with registry.http(credit_key) as http:
        printed = http.get(f"/v1/notices/{notice['id']}/print")
    # The last day given, to its end: not "10月10日 00:00", a Saturday the agency is not given.
    assert "请于 2026年10月9日 24:00（北京时间） 前回执" in printed.text
    assert "2026年10月10日" not in printed.text
    assert printed.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_printed_notice_labels_each_number_by_its_document_and_says_what_changed_since(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """The enterprise-supervision profile's `id_number` of a passport holder is no 身份证号码;
    an impose notice read after an amendment and the removal says so above the debtor."""
    agency_id, key = agency(registry)
    subscribe(admin, agency_id, "enterprise_supervision", "pull")
    body = passport_holder_named(registry, court, "欧阳明")
    listing_id = publish_one(registry, court, body)
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), utcnow()) > 0
    with registry.http(key) as http:
        [notice] = http.get("/v1/notices").json()
        first = http.get(f"/v1/notices/{notice['id']}/print").text
    assert "<th>证件号码</th><td>加拿大 E1234567</td>" in first and "身份证号码" not in first
    assert "查阅时" not in first and "移出名单" not in first
    assert post_amendment(registry, court, listing_id, amended_body(body)).status_code == 200
    assert (
        post_removal(registry, court, listing_id, removal_body(listing_id, registry.today)).status_code == 200
    )
    with registry.http(key) as http:
        later = http.get(f"/v1/notices/{notice['id']}/print").text
    assert "本通知依据名单信息第 1 版发出；以下为查阅时的名单信息（第 2 版）。" in later
    assert "该被执行人现已移出名单，请依解除协助执行通知书办理。" in later


def test_a_deadline_beyond_the_calendar_data_is_provisional_and_shown_on_metrics(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    credit_id, _ = agency(registry)
    subscribe(admin, credit_id, "credit_reference", "pull")
    publish_one(registry, court, registry.person_listing(court))
    last = last_covered_year()
    assert f"registry_calendar_covered_through_year {last}.0" in admin.get("/metrics").text
    assert "registry_calendar_provisional_deadlines{" not in admin.get("/metrics").text
    # Issued on 30 December of the last year the data covers: the deadline falls in the next,
    # whose holidays are not known yet.
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), china_midnight(date(last, 12, 30)) + timedelta(hours=10)) > 0
    text = admin.get("/metrics").text
    assert f'registry_calendar_provisional_deadlines{{year="{last + 1}"}} 1.0' in text


@pytest.mark.slow
def test_two_worker_processes_never_send_one_subscription_at_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    for _ in range(12):
        publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)
    env = cli_env(settings) | {
        "REGISTRY_SYNC_BATCH_SIZE": "2",
        "REGISTRY_SYNC_INTERVAL_SECONDS": "0.05",
        "REGISTRY_LOG_LEVEL": "ERROR",
    }
    with running_receiver(default="sleep:0.05") as first, running_receiver(default="sleep:0.05") as second:
        subs = [subscribe(admin, client_id, "credit_reference", "push", r.url) for r in (first, second)]
        workers = [
            subprocess.Popen(
                [registry_bin(), "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for _ in range(2)
        ]
        try:
            _wait(lambda: all(caught_up(registry.engine, s)() for s in subs), 90, "both workers to finish")
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=10)
    expected = [e["seq"] for e in log_events(admin)]
    for receiver in (first, second):
        assert receiver.max_in_flight == 1
        assert [e["seq"] for e in receiver.received] == expected  # no event twice, none missing, in order


@pytest.mark.slow
def test_cli_creates_pauses_resumes_inspects_and_replays(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([registry_bin(), "sync", *args], env=cli_env(settings),
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    refused = cli("create", "--client", client_id, "--profile", "credit_reference", "--mode", "push",
                  "--endpoint", "http://agency.example/hook")  # fmt: skip
    assert refused.returncode != 0 and "invalid_endpoint_url" in refused.stderr
    assert admin.get("/v1/sync/subscriptions").json() == []

    created = cli("create", "--client", client_id, "--profile", "public", "--mode", "pull")
    assert created.returncode == 0, created.stderr
    sub = json.loads(created.stdout)["id"]
    assert json.loads(cli("pause", sub).stdout)["state"] == "paused"
    assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["state"] == "paused"
    assert json.loads(cli("resume", sub).stdout)["state"] == "active"
    head = log_head(registry.engine)
    replayed = json.loads(cli("replay", sub, "--from-seq", "2").stdout)
    assert replayed["cursor"] == 2 and replayed["backlog"] == head + 1 - 2  # the replay is logged too
    inspected = json.loads(cli("inspect", sub).stdout)
    assert inspected["id"] == sub and inspected["latency_seconds"]["samples"] == 0
    assert [s["id"] for s in json.loads(cli("list").stdout)] == [sub]
    assert cli("pause", "sub_missing").returncode != 0


def test_an_agency_reads_every_notice_a_page_at_a_time(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """The list held an agency's oldest 1,000 notices and no more: the newest (lifts among
    them) could never be read nor acknowledged. It pages now, in issue order."""
    credit_id, credit_key = agency(registry)
    subscribe(admin, credit_id, "credit_reference", "pull")
    for _ in range(5):
        publish_one(registry, court, registry.person_listing(court))
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), utcnow()) > 0
    with registry.http(credit_key) as http:
        every = [n["id"] for n in http.get("/v1/notices").json()]
        assert len(every) == 5 and "link" not in http.get("/v1/notices").headers
        seen, url = [], "/v1/notices?limit=2"
        while url:
            page = http.get(url)
            assert page.status_code == 200
            seen += [n["id"] for n in page.json()]
            next_link = re.fullmatch(r'<([^>]+)>; rel="next"', page.headers.get("link", ""))
            url = next_link.group(1) if next_link else ""
            # Absolute, on the public base URL (which may carry a prefix a proxy strips).
            assert not url or url.startswith(registry.url + "/v1/notices?after=")
        assert seen == every  # each once, in issue order, the last page short (1)
        assert http.post(f"/v1/notices/{every[1]}/acknowledge").status_code == 200
        still_open = http.get("/v1/notices", params={"state": "open"}).json()
        assert [n["id"] for n in still_open] == every[:1] + every[2:]
        for bad in ({"after": "not-an-id"}, {"after": "an_" + "0" * 26}, {"state": "closed"}):
            refused = http.get("/v1/notices", params=bad)
            assert (refused.status_code, refused.json()["code"]) == (400, "invalid_parameter"), bad
    _, other_key = agency(registry)
    with registry.http(other_key) as http:
        # Another agency's notice id is no cursor of its own, and its notice is not confirmed.
        assert http.get("/v1/notices", params={"after": every[0]}).status_code == 400
        theirs, unknown = http.get(f"/v1/notices/{every[0]}"), http.get(f"/v1/notices/{'0' * 26}")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["detail"] == unknown.json()["detail"]


def test_the_overdue_notices_are_read_a_page_at_a_time(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    credit_id, _ = agency(registry)
    subscribe(admin, credit_id, "credit_reference", "pull")
    for _ in range(3):
        publish_one(registry, court, registry.person_listing(court))
    with registry.engine.begin() as conn:
        assert step(conn, notice_reader(3), utcnow() - timedelta(days=30)) > 0
    every = [n["id"] for n in admin.get("/v1/notices/overdue").json()]
    assert len(every) == 3
    first = admin.get("/v1/notices/overdue", params={"limit": 2})
    link = re.fullmatch(r'<([^>]+)>; rel="next"', first.headers["link"])
    assert link is not None
    rest = admin.get(link.group(1))
    assert [n["id"] for n in first.json() + rest.json()] == every and "link" not in rest.headers
