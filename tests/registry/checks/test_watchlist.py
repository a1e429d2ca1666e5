"""Watchlists: a bank watches its borrowers (blind index only) and follows their changes
through a cursor that never skips or repeats."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from datetime import date
from typing import cast

import httpx
import pytest
import sqlalchemy as sa

from publishing.sync.watchpush import push_watch_changes
from registry.checks.models import WatchSubject
from registry.checks.schemas import WatchSubjectIn
from registry.checks.watchlist import READER, WatchedSubject, add_subjects, parse_watch_subjects
from registry.eventlog import readers
from registry.identity.crypto import load_secrets
from registry.identity.types import public_identifier
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support import rfc9421
from tests.support.checks import bank, publish_person
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import ending_today, expire_tomorrow, publish_one
from tests.support.publishing import remove
from tests.support.sync_receiver import running_receiver


def follow(settings: Settings) -> int:
    services = Services.create(settings)
    try:
        return asyncio.run(readers.follow(services.db, READER))
    finally:
        asyncio.run(services.close())


def changes(http: httpx.Client, after: int, limit: int = 100) -> dict[str, object]:
    response = http.get("/v1/watchlist/changes", params={"after": after, "limit": limit})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_watchlist_follows_listing_and_removal(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    watched_body = registry.person_listing(court)
    number = watched_body["debtor"]["id_number"]
    unwatched_id, _ = publish_person(registry, court)
    _, http = bank(registry)
    _, other = bank(registry, "Other bank")
    with http, other:
        added = http.post(
            "/v1/watchlist/subjects",
            json={"subjects": [{"id_number": number, "reference": "cust-42"}, {"id_number": "110105"},
                               {"credit_code": "91110000600037341L"}]},
        )  # fmt: skip
        assert added.status_code == 200, added.text
        results = added.json()["results"]
        assert results[0] == {
            "index": 0,
            "status": "added",
            "identifier_masked": public_identifier("resident_id", number),
        }
        assert results[1]["error"]["code"] == "invalid_id_number"
        assert results[2]["status"] == "added"
        again = http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": number}]}).json()
        assert again["results"][0]["status"] == "already_watched"
        assert http.get("/v1/watchlist").json() == {"endpoint": None, "subjects": 2, "push": None}

        assert follow(settings) > 0  # the unwatched listing and setup events: no change for anyone
        assert changes(http, 0) == {"changes": [], "next_after": 0}

        listed_id, _ = publish_person(
            registry, court, **{k: v for k, v in watched_body.items() if k != "submission_id"}
        )
        remove(registry, court, listed_id)
        follow(settings)
        first = changes(http, 0, limit=1)
        [listed] = first["changes"]  # type: ignore[misc]
        assert listed["change"] == "listed" and listed["listing_id"] == listed_id
        assert listed["reference"] == "cust-42"
        assert listed["identifier_masked"] == public_identifier("resident_id", number)
        assert listed["case_number"] == watched_body["case_number"]
        second = changes(http, int(first["next_after"]))  # type: ignore[call-overload]
        [removed] = second["changes"]  # type: ignore[misc]
        assert removed["change"] == "removed" and removed["reason"] == "performed"
        assert removed["seq"] > listed["seq"]
        # Never repeats, never skips: the end is stable, re-reading from 0 gives the same two.
        assert changes(http, int(second["next_after"])) == {  # type: ignore[call-overload]
            "changes": [],
            "next_after": second["next_after"],
        }
        assert [c["seq"] for c in changes(http, 0)["changes"]] == [listed["seq"], removed["seq"]]  # type: ignore[attr-defined]
        assert follow(settings) == 0
        assert len(changes(http, 0)["changes"]) == 2  # type: ignore[arg-type]
        # Another bank watching nobody sees nothing.
        assert changes(other, 0)["changes"] == []

        gone = http.post(
            "/v1/watchlist/subjects/remove",
            json={"subjects": [{"id_number": number}, {"id_number": "110105"}]},
        )
        assert [r.get("status") for r in gone.json()["results"]] == ["removed", None]
        assert http.get("/v1/watchlist").json()["subjects"] == 1

    # Stored: blind-index values only.
    blind = load_secrets(settings).blind_index
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM watch_subjects"))]
        dump = repr(stored) + repr([tuple(r) for r in conn.execute(sa.text("SELECT * FROM watch_changes"))])
    assert number not in dump and "91110000600037341L" not in dump
    assert [bytes(row[1]) for row in stored] == [blind("credit_code:91110000600037341L")]  # type bound in
    assert unwatched_id not in dump


def test_a_subject_is_named_once_a_request_and_a_new_reference_replaces_the_stored_one(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    body = registry.person_listing(court)
    number = body["debtor"]["id_number"]
    _, http = bank(registry)
    with http:

        def add(*subjects: dict[str, str]) -> list[str]:
            response = http.post("/v1/watchlist/subjects", json={"subjects": list(subjects)})
            assert response.status_code == 200, response.text
            return [r.get("status") or r["error"]["code"] for r in response.json()["results"]]

        # Each was answered `added`, and the second reference was kept without a word.
        named_twice = http.post(
            "/v1/watchlist/subjects",
            json={"subjects": [{"id_number": number, "reference": "cust-1"},
                               {"credit_code": "91110000600037341L"},
                               {"id_number": number, "reference": "cust-2"}]},
        ).json()["results"]  # fmt: skip
        assert [r.get("status") for r in named_twice] == ["added", "added", None]
        assert named_twice[2]["index"] == 2 and named_twice[2]["error"]["code"] == "duplicate_subject"
        assert "index 0" in named_twice[2]["error"]["detail"]
        # A new reference was ignored without a word.
        assert add({"id_number": number}) == ["already_watched"]
        assert add({"id_number": number, "reference": "cust-1"}) == ["already_watched"]
        assert add({"id_number": number, "reference": "cust-3"}) == ["reference_updated"]
        assert http.get("/v1/watchlist").json()["subjects"] == 2

        listed_id, _ = publish_person(
            registry, court, **{k: v for k, v in body.items() if k != "submission_id"}
        )
        follow(settings)
        listed = cast(list[dict[str, object]], changes(http, 0)["changes"])
    assert [(c["listing_id"], c["reference"]) for c in listed] == [(listed_id, "cust-3")]


def test_watchlist_endpoint_and_refusals(registry: Registry) -> None:
    _, http = bank(registry)
    with http:
        assert http.put(
            "/v1/watchlist/endpoint", json={"endpoint": "https://bank.example/hooks/registry"}
        ).json() == {"endpoint": "https://bank.example/hooks/registry"}
        assert http.get("/v1/watchlist").json()["endpoint"] == "https://bank.example/hooks/registry"
        for bad in ("http://bank.example/x", "https://user:pw@bank.example/x", "not a url"):
            refused = http.put("/v1/watchlist/endpoint", json={"endpoint": bad})
            assert refused.status_code == 422 and refused.json()["code"] == "invalid_endpoint"
        assert http.put("/v1/watchlist/endpoint", json={"endpoint": None}).json() == {"endpoint": None}
        too_many = {"subjects": [{"id_number": "11010519491231002X"}] * 10_001}
        assert http.post("/v1/watchlist/subjects", json=too_many).json()["code"] == "batch_too_large"
        assert (
            http.post(
                "/v1/watchlist/subjects", content=b"[", headers={"content-type": "application/json"}
            ).status_code
            == 400
        )
        # Nothing to watch, or a reference that is empty: said, as a check says it.
        for path in ("/v1/watchlist/subjects", "/v1/watchlist/subjects/remove"):
            empty = http.post(path, json={"subjects": []})
            assert (empty.status_code, empty.json()["code"]) == (422, "no_subjects")
        blank_reference = {"subjects": [{"id_number": "11010519491231002X", "reference": ""}]}
        blank = http.post("/v1/watchlist/subjects", json=blank_reference)
        assert blank.status_code == 422 and blank.json()["pointer"] == "/subjects/0/reference"
        assert http.get("/v1/watchlist").json()["subjects"] == 0
        assert http.get("/v1/watchlist/changes", params={"after": -1}).status_code == 400
        # A cursor past the log's head was never given: answered "no change", it skipped them.
        beyond = http.get("/v1/watchlist/changes", params={"after": 99_999_999})
        assert (beyond.status_code, beyond.json()["code"]) == (422, "cursor_beyond_head")
    with registry.http(registry.client("agency")) as agency:
        assert agency.get("/v1/watchlist/changes").status_code == 403
        assert agency.post("/v1/watchlist/subjects", json={"subjects": []}).status_code == 403


def test_the_subjects_a_bank_checks_are_watched_as_they_are(registry: Registry, court: CourtHandle) -> None:
    """bank-checks.md: watchlist subjects take the same fields as a check's. A check subject
    carries its `name`: taken (and not used), not a refusal of the whole request."""
    body = registry.person_listing(court)
    _, http = bank(registry)
    subjects = [
        {"id_number": body["debtor"]["id_number"], "name": body["debtor"]["name"]},
        {"id_number": "11010519491231002X"},
    ]
    with http:
        assert (
            http.post(
                "/v1/checks", json={"subjects": subjects, "purpose": "loan_application", "reference": "r-1"}
            ).status_code
            == 200
        )
        added = http.post("/v1/watchlist/subjects", json={"subjects": subjects})
        assert added.status_code == 200, added.text
        assert [r["status"] for r in added.json()["results"]] == ["added", "added"]
        named_badly = http.post(
            "/v1/watchlist/subjects",
            json={"subjects": [{"id_number": "11010519491231002X", "name": "张\u0000"}]},
        )
        assert named_badly.status_code == 422 and named_badly.json()["pointer"] == "/subjects/0/name"


def test_expiry_is_a_watchlist_change(registry: Registry, court: CourtHandle, settings: Settings) -> None:
    body = ending_today(registry, court)
    listing_id = publish_one(registry, court, body)
    follow(settings)  # the listing predates the watch: not a change for this bank
    _, http = bank(registry)
    with http:
        http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": body["debtor"]["id_number"]}]})
        assert expire_tomorrow(registry) == 1
        follow(settings)
        [expired] = changes(http, 0)["changes"]  # type: ignore[misc]
    assert expired["change"] == "expired" and expired["listing_id"] == listing_id
    assert expired["reason"] == "term_expired"
    # A term expiry is effective on the term's last day, today (it leaves the list tomorrow).
    assert date.fromisoformat(expired["effective_on"]) == registry.today


def push(settings: Settings) -> int:
    # A failed push backs off (exponentially, from backoff_base_seconds): keep it short here.
    services = Services.create(
        settings.override(sync={"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.01})
    )
    try:
        return asyncio.run(push_watch_changes(services))
    finally:
        asyncio.run(services.close())


def test_watchlist_changes_are_pushed_signed_in_order_and_retried(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    body = registry.person_listing(court)
    _, http = bank(registry)
    with http, running_receiver(script=deque(["500"])) as receiver:
        assert http.put("/v1/watchlist/endpoint", json={"endpoint": receiver.url}).status_code == 200
        watched = http.post(
            "/v1/watchlist/subjects", json={"subjects": [{"id_number": body["debtor"]["id_number"]}]}
        )
        assert watched.status_code == 200, watched.text
        listing_id, _ = publish_person(
            registry, court, **{k: v for k, v in body.items() if k != "submission_id"}
        )
        remove(registry, court, listing_id)
        follow(settings)

        assert push(settings) == 0  # the receiver answered 500: nothing is marked delivered
        time.sleep(0.05)  # past the back-off
        assert push(settings) == 2
        assert push(settings) == 0  # delivered once acknowledged, not again

        failed, delivered = receiver.deliveries
        assert failed.action == "500" and delivered.body == failed.body
        assert [(c["change"], c["listing_id"]) for c in receiver.received] == [
            ("listed", listing_id),
            ("removed", listing_id),
        ]
        assert receiver.received[0]["seq"] < receiver.received[1]["seq"]
        assert body["debtor"]["id_number"] not in delivered.body.decode()
        with registry.http() as public:
            jwks = public.get("/.well-known/jwks.json").json()
        verified = rfc9421.verify(
            delivered.headers, delivered.body, jwks, method="POST", target_uri=receiver.url
        )
        assert "content-digest" in verified.components
        with pytest.raises(rfc9421.VerificationError):
            rfc9421.verify(
                delivered.headers, delivered.body + b" ", jwks, method="POST", target_uri=receiver.url
            )


def test_two_requests_adding_one_new_subject_at_once_add_it_once(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine
) -> None:
    """The second of two concurrent requests finds the row the first added when it inserts:
    it answers `already_watched` (or `reference_updated`, its reference kept), not `added`."""
    number = registry.person_listing(court)["debtor"]["id_number"]
    client_id, http = bank(registry)
    http.close()
    secrets = load_secrets(settings)

    def subjects(reference: str) -> list[WatchedSubject]:
        wanted = [WatchSubjectIn(id_number=number, reference=reference)]
        return parse_watch_subjects(wanted, secrets.blind_index, secrets.keyring)

    answers: dict[str, list[dict[str, object]]] = {}
    with engine.connect() as first:
        first.begin()
        answers["first"] = add_subjects(first, client_id, subjects("cust-1"), utcnow())

        def second() -> None:
            with engine.begin() as conn:
                answers["second"] = add_subjects(conn, client_id, subjects("cust-2"), utcnow())

        racing = threading.Thread(target=second)
        racing.start()
        # The second has read no row yet and waits on the first's insert (PostgreSQL), or
        # waits for the write lock (SQLite): either way the first commits under it.
        time.sleep(1.0)
        first.commit()
    racing.join(timeout=30)
    assert not racing.is_alive()
    assert answers["first"][0]["status"] == "added"
    assert answers["second"][0]["status"] == "reference_updated"
    with engine.connect() as conn:
        stored = (
            conn.execute(sa.select(WatchSubject.reference).where(WatchSubject.client_id == client_id))
            .scalars()
            .all()
        )
    assert stored == ["cust-2"]


def test_an_unreadable_subject_is_its_own_error_in_a_watchlist_request(
    registry: Registry, court: CourtHandle
) -> None:
    """A forbidden character (`registry.text`) or over 256 characters in a subject's
    identifier fields: that subject's error, the rest watched (or unwatched); outside the
    subjects, the whole request is refused as before."""
    number = registry.person_listing(court)["debtor"]["id_number"]
    unreadable = [
        ({"id_number": "11010519491231002X\u200b"}, "invalid_id_number"),
        ({"id_number": "1" * 300}, "invalid_id_number"),
        ({"id_type": "resident_id\u0000", "id_number": number}, "unknown_id_type"),
        ({"credit_code": "91110000600037341L\u202e"}, "invalid_credit_code"),
        ({"organization_code": "6" * 257}, "invalid_organization_code"),
        ({"registration": {"country": "GBR", "number": "SC1\u2060"}}, "invalid_registration_number"),
    ]
    _, http = bank(registry)
    with http:
        subjects = [{"id_number": number}] + [subject for subject, _ in unreadable]
        for path, answers in (
            ("/v1/watchlist/subjects", ("added", "already_watched")),
            ("/v1/watchlist/subjects/remove", ("removed", "not_watched")),
        ):
            for status, ascii_only in zip(answers, (False, True), strict=True):
                content = json.dumps({"subjects": subjects}, ensure_ascii=ascii_only).encode()
                response = http.post(path, content=content, headers={"content-type": "application/json"})
                assert response.status_code == 200, (path, response.text)
                results = response.json()["results"]
                assert [r["index"] for r in results] == list(range(len(subjects)))
                assert [r.get("status") or r["error"]["code"] for r in results] == [
                    status, *(code for _, code in unreadable)
                ], path  # fmt: skip
                assert "U+200B" in results[1]["error"]["detail"] and "256" in results[2]["error"]["detail"]
                assert "1" * 300 not in response.text and "\u200b" not in response.text
        refused = http.post(
            "/v1/watchlist/subjects",
            json={"subjects": [{"id_number": number, "reference": "cust\u200b"}, unreadable[0][0]]},
        )
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_field"
        assert refused.json()["pointer"] == "/subjects/0/reference"
        assert http.get("/v1/watchlist").json()["subjects"] == 0


def test_a_subject_named_twice_in_a_removal_is_removed_once(registry: Registry, court: CourtHandle) -> None:
    """As in an addition: the first is answered, each later one naming the same subject (the
    18-digit number again, or its 15-digit form) is `duplicate_subject` naming the first."""
    _, http = bank(registry)
    with http:
        added = http.post(
            "/v1/watchlist/subjects",
            json={"subjects": [{"id_number": "11010519491231002X"}, {"credit_code": "91110000600037341L"}]},
        )
        assert [r["status"] for r in added.json()["results"]] == ["added", "added"]
        removal = {"subjects": [{"credit_code": "91110000600037341L"}, {"id_number": "11010519491231002X"},
                                {"id_number": "11010519491231002X"}, {"id_number": "110105491231002"},
                                {"id_number": "abc"}, {"credit_code": "91110000600037341L"}]}  # fmt: skip
        results = http.post("/v1/watchlist/subjects/remove", json=removal).json()["results"]
        assert [r.get("status") or r["error"]["code"] for r in results] == [
            "removed", "removed", "duplicate_subject", "duplicate_subject", "invalid_id_number",
            "duplicate_subject",
        ]  # fmt: skip
        assert [r["index"] for r in results] == list(range(6))
        assert "index 1" in results[2]["error"]["detail"] and "index 1" in results[3]["error"]["detail"]
        assert "index 0" in results[5]["error"]["detail"]
        assert http.get("/v1/watchlist").json()["subjects"] == 0
        # Not watched: the first says so, the later ones are still duplicates.
        again = http.post("/v1/watchlist/subjects/remove", json=removal).json()["results"]
        assert [r.get("status") or r["error"]["code"] for r in again] == [
            "not_watched", "not_watched", "duplicate_subject", "duplicate_subject", "invalid_id_number",
            "duplicate_subject",
        ]  # fmt: skip
