"""The personnel-oversight profile (Opinion Art. 2, 4: special subjects only) and the
enterprise-supervision profile's persons (Company Law 2023 Art. 178) through the sync suite:
push, pull, snapshot, drift, notices. Each profile sends exactly its fields."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from publishing.sync.notices import notice_reader
from registry.eventlog.readers import step
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.publishing.sync.test_sync import (
    ENTERPRISE_FIELDS,
    EVENT_FIELDS,
    _jwks,
    _snapshot,
    agency,
    caught_up,
    fast,
    org_listing,
    pull_all,
    pump,
    subscribe,
)
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import (
    amended_body,
    post_amendment,
    post_removal,
    publish_one,
    removal_body,
)
from tests.support.sync_receiver import running_receiver

PERSONNEL_FIELDS = {
    "id", "version", "status", "kind", "name", "identifier", "id_type", "legal_representative",
    "special_subject", "employer", "court_code", "court_name", "case_number", "basis_document_number",
    "basis_issuer", "obligations", "amount_cents", "performance", "grounds", "listed_on", "removal",
}  # fmt: skip
ENTERPRISE_PERSON_FIELDS = {
    "id", "version", "status", "kind", "name", "id_number", "id_type", "court_code", "court_name",
    "case_number", "listed_on", "removal",
}  # fmt: skip
PERSONNEL = "中共中央组织部"


def special_person(registry: Registry, court: CourtHandle, category: str = "civil_servant") -> dict[str, Any]:
    return registry.person_listing(court, special_subject={"category": category, "employer": "某某市财政局"})


def special_org(registry: Registry, court: CourtHandle) -> dict[str, Any]:
    body = org_listing(registry, court)
    body["special_subject"] = {"category": "state_owned_enterprise", "employer": "某某市国资委"}
    return body


def test_personnel_oversight_pulls_only_special_subjects_with_exactly_its_fields(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    plain_person = registry.person_listing(court)
    plain_id = publish_one(registry, court, plain_person)
    plain_org_id = publish_one(registry, court, org_listing(registry, court))
    servant = special_person(registry, court)
    servant_id = publish_one(registry, court, servant)
    soe = special_org(registry, court)
    soe_id = publish_one(registry, court, soe)
    assert post_removal(registry, court, soe_id, removal_body(soe_id, registry.today)).status_code == 200
    client_id, key = agency(registry, PERSONNEL)
    sub = subscribe(admin, client_id, "personnel_oversight", "pull")
    with registry.http(key) as http:
        events, cursor, text = pull_all(http, sub)
        assert http.post(f"/v1/sync/{sub}/ack", json={"cursor": cursor}).status_code == 200
    assert [(e["listing_id"], e["type"]) for e in events] == [
        (servant_id, "listing.published"), (soe_id, "listing.published"), (soe_id, "listing.removed"),
    ]  # fmt: skip
    for event in events:
        assert set(event) == EVENT_FIELDS
        assert set(event["listing"]) == PERSONNEL_FIELDS
    record = events[0]["listing"]
    assert record["identifier"] == servant["debtor"]["id_number"]
    assert record["special_subject"] == "civil_servant" and record["employer"] == "某某市财政局"
    assert record["legal_representative"] is None and record["kind"] == "person"
    org_record = events[1]["listing"]
    assert org_record["identifier"] == soe["debtor"]["credit_code"]
    assert org_record["legal_representative"] == soe["debtor"]["legal_representative"]
    assert events[2]["listing"]["removal"]["reason"] == "performed"
    assert plain_id not in text and plain_org_id not in text
    assert plain_person["debtor"]["id_number"] not in text and plain_person["debtor"]["name"] not in text


def test_personnel_oversight_push_snapshot_drift_and_notices(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    plain = [publish_one(registry, court, registry.listing(court)) for _ in range(2)]
    special = [
        publish_one(registry, court, special_person(registry, court, category))
        for category in ("party_member", "npc_deputy", "cppcc_member")
    ]
    client_id, key = agency(registry, PERSONNEL)
    with running_receiver() as receiver:
        receiver.script.extend(["500", "ok"])
        sub = subscribe(admin, client_id, "personnel_oversight", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, sub))
    received = receiver.unique()
    assert [e["listing_id"] for e in received] == special
    assert all(set(e["listing"]) == PERSONNEL_FIELDS for e in received)
    assert not set(plain) & {e["listing_id"] for e in receiver.received}

    jwks = _jwks(registry)
    with registry.http(key) as http:
        records, _ = _snapshot(http, sub, jwks, limit=2)
        assert sorted(r["id"] for r in records) == sorted(special)
        assert all(set(r) == PERSONNEL_FIELDS for r in records)
        drift = http.get(f"/v1/sync/{sub}/drift").json()
        assert drift["in_drift"] == 0 and drift["active_in_agreement"] == 3
        # Skipped past a new special subject: it is drift; a plain listing is not.
        new = publish_one(registry, court, special_person(registry, court, "civil_servant"))
        publish_one(registry, court, registry.listing(court))
        head = admin.get("/v1/events", params={"limit": 1000}).json()["events"][-1]["seq"]
        assert admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": head}).status_code == 200
        report = http.get(f"/v1/sync/{sub}/drift").json()
        assert report["drift"]["missing_at_agency"] == 1 and report["samples"]["missing_at_agency"] == [new]

    issued_at = utcnow() - timedelta(days=30)
    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), issued_at)
    with registry.http(key) as http:
        notices = http.get("/v1/notices").json()
        assert sorted(n["listing_id"] for n in notices) == sorted([*special, new])
        notice = http.get(f"/v1/notices/{notices[0]['id']}").json()
        assert set(notice["debtor"]) == PERSONNEL_FIELDS
        assert any("第二条" in m for m in notice["measures"])
        printed = http.get(f"/v1/notices/{notices[0]['id']}/print").text
        assert "特殊主体类别" in printed and "工作单位或上级主管部门" in printed
        assert "party_member" not in printed and "中共党员" in printed


def test_a_special_subject_marked_by_amendment_reaches_the_personnel_profile(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    client_id, key = agency(registry, PERSONNEL)
    sub = subscribe(admin, client_id, "personnel_oversight", "pull")
    amended = amended_body(body) | {
        "special_subject": {"category": "civil_servant", "employer": "某某县人社局"}
    }
    assert post_amendment(registry, court, listing_id, amended).status_code == 200
    with registry.http(key) as http:
        events, _, _ = pull_all(http, sub)
    # The listing as it stands now: both events carry the mark (agencies keep the highest version).
    assert [(e["type"], e["listing"]["version"]) for e in events] == [
        ("listing.published", 2),
        ("listing.amended", 2),
    ]
    assert events[-1]["listing"]["employer"] == "某某县人社局"


def test_enterprise_supervision_carries_persons_with_an_explicit_allow_list(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    person = registry.person_listing(court)
    person_id = publish_one(registry, court, person)
    org = org_listing(registry, court)
    org_id = publish_one(registry, court, org)
    assert (
        post_removal(registry, court, person_id, removal_body(person_id, registry.today)).status_code == 200
    )
    client_id, key = agency(registry, "国家市场监督管理总局")
    pull = subscribe(admin, client_id, "enterprise_supervision", "pull")
    with registry.http(key) as http:
        events, cursor, text = pull_all(http, pull)
        assert http.post(f"/v1/sync/{pull}/ack", json={"cursor": cursor}).status_code == 200
    assert [(e["listing_id"], e["type"]) for e in events] == [
        (person_id, "listing.published"), (org_id, "listing.published"), (person_id, "listing.removed"),
    ]  # fmt: skip
    person_record = events[0]["listing"]
    assert set(person_record) == ENTERPRISE_PERSON_FIELDS
    assert person_record["kind"] == "person" and person_record["id_number"] == person["debtor"]["id_number"]
    assert person_record["status"] == "removed" and person_record["removal"]["reason"] == "performed"
    assert set(events[1]["listing"]) == ENTERPRISE_FIELDS and events[1]["listing"]["kind"] == "organization"
    # Who, which case, whether listed: nothing of the obligations, amounts, sex or birth date.
    for word in ("obligations", "amount_cents", "birth_date", "sex", "performance"):
        assert f'"{word}"' not in text

    with running_receiver() as receiver:
        push = subscribe(admin, client_id, "enterprise_supervision", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, push))
    assert [e["listing_id"] for e in receiver.unique()] == [person_id, org_id, person_id]
    jwks = _jwks(registry)
    with registry.http(key) as http:
        records, _ = _snapshot(http, pull, jwks, limit=10)
        assert [r["id"] for r in records] == [org_id]  # the person is no longer listed
        fresh = publish_one(registry, court, registry.person_listing(court))
        records, _ = _snapshot(http, pull, jwks, limit=10)
        assert sorted(r["id"] for r in records) == sorted([org_id, fresh])
        assert http.get(f"/v1/sync/{pull}/drift").json()["pending_listings"] == 1
    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), utcnow())
        count = conn.execute(
            sa.text("SELECT count(*) FROM assistance_notices WHERE client_id = :c"), {"c": client_id}
        )
        assert count.scalar_one() == 4 * 2  # two subscriptions: person, org, person lifted, fresh
    with registry.http(key) as http:
        notices = http.get("/v1/notices").json()
        person_notice = next(n for n in notices if n["listing_id"] == fresh)
        detail = http.get(f"/v1/notices/{person_notice['id']}").json()
        assert set(detail["debtor"]) == ENTERPRISE_PERSON_FIELDS
        assert any("第一百七十八条" in m for m in detail["measures"])


def test_dropping_the_special_subject_mark_tells_personnel_agencies_to_let_the_listing_go(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    body = special_person(registry, court, "party_member")
    listing_id = publish_one(registry, court, body)
    client_id, key = agency(registry, PERSONNEL)
    pull = subscribe(admin, client_id, "personnel_oversight", "pull")
    with registry.http(key) as http:
        _, cursor, _ = pull_all(http, pull)
        assert http.post(f"/v1/sync/{pull}/ack", json={"cursor": cursor}).status_code == 200
        assert http.get(f"/v1/sync/{pull}/drift").json()["active_in_agreement"] == 1
    with running_receiver() as receiver:
        push = subscribe(admin, client_id, "personnel_oversight", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, push))
        with registry.engine.begin() as conn:
            step(conn, notice_reader(3), utcnow())
        # The court finds the debtor is no party member: the mark goes, the listing stays.
        unmarked = amended_body(body)
        unmarked.pop("special_subject")
        assert post_amendment(registry, court, listing_id, unmarked).status_code == 200
        pump(fast(settings), caught_up(registry.engine, push))
        # A further amendment of a listing no longer in scope is not sent.
        again = amended_body(unmarked)
        assert post_amendment(registry, court, listing_id, again).status_code == 200
        pump(fast(settings), caught_up(registry.engine, push))
    pushed = receiver.unique()
    # The push's agency, too, holds the listing as let go: no drift.
    push_drift = admin.get(f"/v1/sync/subscriptions/{push}/drift").json()
    assert push_drift["in_drift"] == 0 and push_drift["active_in_agreement"] == 0, push_drift
    assert [(e["type"], e["listing_version"]) for e in pushed] == [
        ("listing.published", 1),
        ("listing.amended", 2),
    ]
    assert pushed[-1]["listing"] is None and pushed[-1]["removal"] is None
    with registry.http(key) as http:
        events, cursor, text = pull_all(http, pull, cursor)
        assert [(e["type"], e["listing_version"], e["listing"]) for e in events] == [
            ("listing.amended", 2, None)
        ]
        assert body["debtor"]["id_number"] not in text
        assert http.post(f"/v1/sync/{pull}/ack", json={"cursor": cursor}).status_code == 200
        drift = http.get(f"/v1/sync/{pull}/drift").json()
        assert drift["in_drift"] == 0 and drift["active_in_agreement"] == 0

    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), utcnow())
    with registry.http(key) as http:
        notices = http.get("/v1/notices").json()
        kinds = sorted((n["subscription_id"], n["kind"]) for n in notices if n["listing_id"] == listing_id)
        assert kinds == sorted([(pull, "impose"), (pull, "lift"), (push, "impose"), (push, "lift")])
        lift = next(n for n in notices if n["kind"] == "lift")
        shown = http.get(f"/v1/notices/{lift['id']}").json()
        assert shown["title"] == "解除协助执行通知书" and shown["debtor"] is None
        assert "解除协助执行通知书" in http.get(f"/v1/notices/{lift['id']}/print").text


def _notice_kinds(registry: Registry, key: str, listing_id: str) -> list[tuple[str, int]]:
    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), utcnow())
    with registry.http(key) as http:
        notices = http.get("/v1/notices").json()
    return sorted((n["kind"], n["listing_version"]) for n in notices if n["listing_id"] == listing_id)


def test_a_mark_added_by_amendment_asks_personnel_agencies_to_act_from_that_version(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    client_id, key = agency(registry, PERSONNEL)
    subscribe(admin, client_id, "personnel_oversight", "pull")
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    # Read in time: the unmarked listing asks nothing of them.
    assert _notice_kinds(registry, key, listing_id) == []
    marked = amended_body(body) | {
        "special_subject": {"category": "civil_servant", "employer": "某某县人社局"}
    }
    assert post_amendment(registry, court, listing_id, marked).status_code == 200
    assert _notice_kinds(registry, key, listing_id) == [("impose", 2)]
    # A further amendment that keeps the mark asks nothing new; the removal lifts.
    assert post_amendment(registry, court, listing_id, amended_body(marked)).status_code == 200
    assert (
        post_removal(registry, court, listing_id, removal_body(listing_id, registry.today)).status_code == 200
    )
    assert _notice_kinds(registry, key, listing_id) == [("impose", 2), ("lift", 3)]


def test_a_late_notice_reader_issues_what_each_version_asked_for(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    client_id, key = agency(registry, PERSONNEL)
    subscribe(admin, client_id, "personnel_oversight", "pull")
    # Marked at publication, unmarked by amendment, before the notice reader ran.
    dropped = special_person(registry, court, "party_member")
    dropped_id = publish_one(registry, court, dropped)
    unmarked = amended_body(dropped)
    unmarked.pop("special_subject")
    assert post_amendment(registry, court, dropped_id, unmarked).status_code == 200
    # Unmarked at publication, marked by amendment, before the notice reader ran.
    added = registry.person_listing(court)
    added_id = publish_one(registry, court, added)
    marked = amended_body(added) | {
        "special_subject": {"category": "civil_servant", "employer": "某某县人社局"}
    }
    assert post_amendment(registry, court, added_id, marked).status_code == 200

    assert _notice_kinds(registry, key, dropped_id) == [("impose", 1), ("lift", 2)]
    assert _notice_kinds(registry, key, added_id) == [("impose", 2)]
