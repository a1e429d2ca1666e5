"""A paused subscription receives nothing and reads nothing until an admin resumes it: not
when a push or a removal-lane request in flight at the pause fails afterwards, not through
the snapshot, the drift report or a notice, not after a replay. Against real HTTP
receivers, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from publishing.sync.notices import notice_reader
from registry.eventlog.readers import follow_sync
from registry.settings import Settings
from tests.publishing.sync.test_removal_lane import BACKLOG, held_listing, lane_requests, removals
from tests.publishing.sync.test_sync import (
    agency,
    caught_up,
    fast,
    log_events,
    org_listing,
    pump,
    subscribe,
)
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import publish_one
from tests.support.publishing import deliver_once, publish, remove
from tests.support.sync_receiver import Receiver, running_receiver

# A request in flight at the pause fails afterwards: its answer comes after the deadline.
DEADLINE = 1.0
SLOW = 2.5
BACK_OFF = 0.3  # longer than any retry back-off of `fast`


def pause_while_in_flight(admin: httpx.Client, sub: str, receiver: Receiver, settings: Settings) -> None:
    """One pass whose first request is scripted slow; the pause commits while it is in flight."""
    before = len(receiver.deliveries)
    receiver.script.append("slow")
    passing = threading.Thread(target=lambda: asyncio.run(deliver_once(settings)), daemon=True)
    passing.start()
    deadline = time.monotonic() + 10
    while len(receiver.deliveries) == before:
        assert time.monotonic() < deadline, "no request started"
        time.sleep(0.01)
    assert admin.post(f"/v1/sync/subscriptions/{sub}/pause").status_code == 200
    passing.join(timeout=30)
    assert not passing.is_alive()


def assert_paused_and_left_alone(
    admin: httpx.Client, sub: str, receiver: Receiver, settings: Settings
) -> None:
    status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    assert status["state"] == "paused"
    # The failure is on record all the same.
    assert status["failures_total"] == 1 and status["last_error"] == "deadline exceeded"
    sent = len(receiver.deliveries)
    time.sleep(BACK_OFF)
    asyncio.run(deliver_once(settings))
    assert len(receiver.deliveries) == sent, "a paused subscription received a push"
    assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["state"] == "paused"


@pytest.mark.parametrize("max_attempts", [1, 20], ids=["last-attempt", "retry-left"])
def test_a_push_that_fails_after_a_pause_leaves_the_subscription_paused(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings, max_attempts: int
) -> None:
    listings = [publish_one(registry, court, registry.person_listing(court)) for _ in range(2)]
    client_id, _ = agency(registry)
    sending = fast(settings, timeout_seconds=DEADLINE, batch_size=100, max_attempts=max_attempts)
    with running_receiver(slow_seconds=SLOW) as receiver:
        sub = subscribe(admin, client_id, "credit_reference", "push", receiver.url)
        pause_while_in_flight(admin, sub, receiver, sending)
        assert_paused_and_left_alone(admin, sub, receiver, sending)
        assert len(receiver.deliveries) == 1
        resumed = admin.post(f"/v1/sync/subscriptions/{sub}/resume").json()
        assert resumed["state"] == "active" and resumed["attempts"] == 0
        pump(sending, caught_up(registry.engine, sub))
    assert {e["listing_id"] for e in receiver.unique()} == set(listings)


def test_a_removal_lane_request_that_fails_after_a_pause_leaves_the_subscription_paused(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    sending = fast(settings, timeout_seconds=DEADLINE)
    with running_receiver(slow_seconds=SLOW) as receiver:
        sub, held = held_listing(registry, court, admin, settings, receiver)
        publish(registry, court, BACKLOG)
        remove(registry, court, held)
        before = len(receiver.deliveries)
        pause_while_in_flight(admin, sub, receiver, sending)
        assert [r["events"][0]["listing_id"] for r in lane_requests(receiver)] == [held]
        assert_paused_and_left_alone(admin, sub, receiver, sending)
        assert len(receiver.deliveries) == before + 1
        assert admin.post(f"/v1/sync/subscriptions/{sub}/resume").status_code == 200
        pump(sending, caught_up(registry.engine, sub))
    # Resumed: the lane is tried again first, and the removal applied once.
    assert [r["events"][0]["listing_id"] for r in lane_requests(receiver)] == [held, held]
    assert removals(receiver.unique()).count(held) == 1


def test_a_paused_subscription_reads_nothing_of_its_profile_until_resumed(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    person = registry.person_listing(court)
    publish_one(registry, court, person)
    publish_one(registry, court, org_listing(registry, court))
    client_id, key = agency(registry)
    pull = subscribe(admin, client_id, "credit_reference", "pull")
    push = subscribe(admin, client_id, "housing_construction", "push", "https://agency.example/hook")
    follow_sync(registry.engine, notice_reader(3))
    reads = [
        f"/v1/sync/{pull}/events",
        *(f"/v1/sync/{sub}/{what}" for sub in (pull, push) for what in ("snapshot", "drift")),
    ]
    with registry.http(key) as http:
        notices = http.get("/v1/notices").json()
        assert len(notices) == 3  # credit reference: person and organisation; housing: organisation
        reads += [f"/v1/notices/{n['id']}{page}" for n in notices for page in ("", "/print")]
        assert all(http.get(path).status_code == 200 for path in reads)

        for sub in (pull, push):
            assert admin.post(f"/v1/sync/subscriptions/{sub}/pause").status_code == 200
        for path in reads:
            refused = http.get(path)
            assert refused.status_code == 409, path
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "subscription_paused", path
            assert person["debtor"]["id_number"] not in refused.text
        # What holds no personal data stays: the list of notices (ids), answering one.
        assert [n["id"] for n in http.get("/v1/notices").json()] == [n["id"] for n in notices]
        assert http.post(f"/v1/notices/{notices[0]['id']}/acknowledge").status_code == 200
        # The operator's view of the drift (listing ids) is the admin's, paused or not.
        assert admin.get(f"/v1/sync/subscriptions/{pull}/drift").status_code == 200

        for sub in (pull, push):
            assert admin.post(f"/v1/sync/subscriptions/{sub}/resume").status_code == 200
        assert all(http.get(path).status_code == 200 for path in reads)


def test_a_replay_of_a_paused_subscription_waits_for_its_resumption(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    client_id, _ = agency(registry)
    with running_receiver() as receiver:
        sub = subscribe(admin, client_id, "credit_reference", "push", receiver.url)
        pump(fast(settings), caught_up(registry.engine, sub))
        first = len(receiver.deliveries)
        assert admin.post(f"/v1/sync/subscriptions/{sub}/pause").status_code == 200
        replayed = admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": 0})
        assert replayed.status_code == 200
        assert replayed.json()["state"] == "paused" and replayed.json()["cursor"] == 0
        asyncio.run(deliver_once(fast(settings)))
        assert len(receiver.deliveries) == first, "a replay resumed a paused subscription"
        assert admin.post(f"/v1/sync/subscriptions/{sub}/resume").json()["cursor"] == 0
        pump(fast(settings), caught_up(registry.engine, sub))
    expected = [e["seq"] for e in log_events(admin)]
    assert [e["seq"] for e in receiver.received] == expected + expected
