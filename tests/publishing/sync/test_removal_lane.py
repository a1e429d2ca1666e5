"""The push's removal lane: a removal of a listing the agency already holds goes out ahead of
the subscription's backlog, in its own request, and only then; never before the listing's
own earlier events; never twice once acknowledged; never to a paused or revoked
subscription; retried like any push. Against a real HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa

from publishing.sync.delivery import deliver_due
from registry.clients.services import create_client, revoke_client
from registry.eventlog.services import EventDraft, append_events
from registry.eventlog.types import EventType
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry
from tests.support.publishing import deliver_once, publish, remove
from tests.support.sync_receiver import Receiver, running_receiver

BACKLOG = 12  # listings published behind the removal's listing, three log events a request


def fast(settings: Settings, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "timeout_seconds": 3.0,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "batch_size": 3,
        "lease_seconds": 10.0,
        "max_attempts": 20,
    }
    return settings.override(sync=values | changes)


def agency(registry: Registry) -> str:
    with registry.engine.begin() as conn:
        client_id, _ = create_client(conn, "中国人民银行征信中心", "agency", None, actor="test", now=utcnow())
    return client_id


def subscribe(admin: httpx.Client, client_id: str, url: str) -> str:
    response = admin.post(
        "/v1/sync/subscriptions",
        json={"client_id": client_id, "profile": "credit_reference", "mode": "push", "endpoint_url": url},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def cursor(engine: sa.Engine, sub_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT cursor FROM sync_subscriptions WHERE id = :id"), {"id": sub_id}
            ).scalar_one()
        )


def log_head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def pump(settings: Settings, done: Callable[[], bool], seconds: float = 60) -> None:
    """Push passes, as the worker runs them, until `done()`."""

    async def main() -> None:
        services = Services.create(settings)
        try:
            deadline = time.monotonic() + seconds
            while not done():
                assert time.monotonic() < deadline, "delivery did not finish in time"
                await deliver_due(services, "test-worker")
                await asyncio.sleep(0.02)
        finally:
            await services.close()

    asyncio.run(main())


def caught_up(engine: sa.Engine, sub_id: str) -> Callable[[], bool]:
    return lambda: cursor(engine, sub_id) >= log_head(engine)


def held_listing(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings, receiver: Receiver
) -> tuple[str, str]:
    """A listing the agency has received and acknowledged; (subscription, listing)."""
    (listing_id,) = publish(registry, court, 1)
    sub = subscribe(admin, agency(registry), receiver.url)
    pump(fast(settings), caught_up(registry.engine, sub))
    assert [e["listing_id"] for e in receiver.unique()] == [listing_id]
    return sub, listing_id


def removals(events: list[dict[str, Any]]) -> list[str]:
    return [e["listing_id"] for e in events if e["type"] == "listing.removed"]


def lane_requests(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(d.body) for d in receiver.deliveries if json.loads(d.body).get("lane") == "removal"]


def assert_in_order_per_listing(events: list[dict[str, Any]]) -> None:
    last: dict[str, int] = {}
    for event in events:
        assert event["seq"] > last.get(event["listing_id"], 0), "events of one listing out of order"
        last[event["listing_id"]] = event["seq"]


def test_a_removal_behind_a_backlog_reaches_the_receiver_first_and_only_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    with running_receiver() as receiver:
        sub, held = held_listing(registry, court, admin, settings, receiver)
        backlog = publish(registry, court, BACKLOG)
        remove(registry, court, backlog[0])  # in the backlog: goes in order, after its listing
        remove(registry, court, held)
        before = len(receiver.received)
        pump(fast(settings), caught_up(registry.engine, sub))
        status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
        metrics = admin.get("/metrics").text
    sent = receiver.received[before:]
    # The held listing's removal first, alone in its lane request, then the backlog in order.
    assert sent[0]["listing_id"] == held and sent[0]["type"] == "listing.removed"
    (lane,) = lane_requests(receiver)
    assert [e["listing_id"] for e in lane["events"]] == [held]
    seq = lane["events"][0]["seq"]
    assert lane["events"][0]["idempotency_key"] == f"{sub}:{seq}"
    lane_delivery = next(d for d in receiver.deliveries if b'"lane"' in d.body)
    assert lane_delivery.headers["idempotency-key"] == f"{sub}:removal:{seq}-{seq}"
    # Not sent again when the main lane reached it: exactly once, no duplicate to apply.
    assert removals(receiver.received).count(held) == 1
    assert len(sent) == len({e["idempotency_key"] for e in sent})
    # The backlog's removal came after its own listing's publication, in the main lane.
    assert removals(sent) == [held, backlog[0]]
    assert_in_order_per_listing(receiver.received)
    assert [e["seq"] for e in sent[1:]] == sorted(e["seq"] for e in sent[1:])
    assert {e["listing_id"] for e in sent} == {held, *backlog}
    assert status["backlog"] == 0 and status["cursor"] == log_head(registry.engine)
    assert status["removal_lane"]["delivered_total"] == 1
    assert status["removal_lane"]["ahead_of_cursor"] == 0  # the cursor passed it
    assert status["removal_lane"]["last_delivered_at"] is not None
    assert status["delivered_total"] == 1 + len(sent)
    labels = f'client="{status["client_id"]}",mode="push",profile="credit_reference",subscription="{sub}"'
    assert f"registry_sync_lane_delivered_events{{{labels}}} 1.0" in metrics
    assert f"registry_sync_lane_ahead_events{{{labels}}} 0.0" in metrics
    drift = admin.get(f"/v1/sync/subscriptions/{sub}/drift").json()
    assert drift["in_drift"] == 0


def test_a_replay_sends_the_lane_s_removals_again_in_order(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    with running_receiver() as receiver:
        sub, held = held_listing(registry, court, admin, settings, receiver)
        publish(registry, court, BACKLOG)
        remove(registry, court, held)
        pump(fast(settings), caught_up(registry.engine, sub))
        assert len(lane_requests(receiver)) == 1
        replayed = admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": 0})
        assert replayed.json()["removal_lane"]["ahead_of_cursor"] == 0
        before = len(receiver.received)
        pump(fast(settings), caught_up(registry.engine, sub))
    again = receiver.received[before:]
    # From the start, the held listing's publication before its removal, everything in log order.
    assert [e["seq"] for e in again] == sorted(e["seq"] for e in again)
    assert [e["type"] for e in again if e["listing_id"] == held] == ["listing.published", "listing.removed"]


def test_a_removal_of_a_listing_not_yet_delivered_comes_after_its_listing(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    with running_receiver() as receiver:
        sub, _ = held_listing(registry, court, admin, settings, receiver)
        backlog = publish(registry, court, BACKLOG)
        remove(registry, court, backlog[-1])  # the last of the backlog: behind every range
        before = len(receiver.received)
        pump(fast(settings), caught_up(registry.engine, sub))
        status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    sent = receiver.received[before:]
    assert lane_requests(receiver) == []
    assert [e["seq"] for e in sent] == sorted(e["seq"] for e in sent)
    assert [e["type"] for e in sent if e["listing_id"] == backlog[-1]] == [
        "listing.published",
        "listing.removed",
    ]
    assert status["removal_lane"]["delivered_total"] == 0


def test_a_failed_lane_request_is_retried_and_applied_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    with running_receiver(slow_seconds=1.0) as receiver:
        sub, held = held_listing(registry, court, admin, settings, receiver)
        publish(registry, court, BACKLOG)
        remove(registry, court, held)
        before = len(receiver.deliveries)
        # The lane's request: refused, then applied but answered after the deadline, then ok.
        receiver.script.extend(["500", "slow", "ok"])
        pump(fast(settings, timeout_seconds=0.5), caught_up(registry.engine, sub))
        status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    first_three = [json.loads(d.body) for d in receiver.deliveries[before : before + 3]]
    assert [body.get("lane") for body in first_three] == ["removal"] * 3
    assert [d.action for d in receiver.deliveries[before : before + 3]] == ["500", "slow", "ok"]
    # Applied twice (the slow answer was not waited for), the same idempotency key both times.
    assert removals(receiver.received).count(held) == 2
    assert removals(receiver.unique()).count(held) == 1
    assert status["failures_total"] == 2 and status["last_error"] is None and status["attempts"] == 0
    assert status["removal_lane"]["delivered_total"] == 1 and status["backlog"] == 0
    assert_in_order_per_listing(receiver.unique())


def _stopped_mid_delivery(
    registry: Registry,
    court: CourtHandle,
    admin: httpx.Client,
    settings: Settings,
    receiver: Receiver,
    stop: Callable[[str, str], None],
) -> tuple[str, str, int]:
    """The main lane's first request of a backlog is in flight when the held listing is
    removed and `stop(subscription, client)` runs; then one more pass. Returns the
    subscription, the held listing and the receiver's request count before the backlog."""
    sub, held = held_listing(registry, court, admin, settings, receiver)
    client_id = admin.get(f"/v1/sync/subscriptions/{sub}").json()["client_id"]
    publish(registry, court, BACKLOG)
    before = len(receiver.deliveries)
    receiver.script.append("sleep:1.5")
    passing = threading.Thread(target=lambda: asyncio.run(deliver_once(fast(settings))), daemon=True)
    passing.start()
    deadline = time.monotonic() + 10
    while len(receiver.deliveries) == before:
        assert time.monotonic() < deadline, "no request started"
        time.sleep(0.01)
    remove(registry, court, held)
    stop(sub, client_id)
    passing.join(timeout=30)
    asyncio.run(deliver_once(fast(settings)))  # a pass after the stop: nothing either
    return sub, held, before


def test_a_paused_subscription_gets_nothing_through_the_lane_until_resumed(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    def pause(sub: str, _client: str) -> None:
        assert admin.post(f"/v1/sync/subscriptions/{sub}/pause").status_code == 200

    with running_receiver() as receiver:
        sub, held, before = _stopped_mid_delivery(registry, court, admin, settings, receiver, pause)
        # Only the request already in flight when the pause committed.
        assert len(receiver.deliveries) == before + 1
        assert held not in removals(receiver.received)
        assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["removal_lane"]["delivered_total"] == 0
        assert admin.post(f"/v1/sync/subscriptions/{sub}/resume").status_code == 200
        pump(fast(settings), caught_up(registry.engine, sub))
    # Resumed: the removal through the lane, once.
    (lane,) = lane_requests(receiver)
    assert [e["listing_id"] for e in lane["events"]] == [held]
    assert removals(receiver.unique()).count(held) == 1


def test_a_revoked_agency_gets_nothing_through_the_lane(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    def revoke(_sub: str, client_id: str) -> None:
        with registry.engine.begin() as conn:
            revoke_client(conn, client_id, actor="test", now=utcnow())

    with running_receiver() as receiver:
        sub, held, before = _stopped_mid_delivery(registry, court, admin, settings, receiver, revoke)
    assert len(receiver.deliveries) == before + 1
    assert held not in removals(receiver.received)
    assert lane_requests(receiver) == []
    assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["removal_lane"]["delivered_total"] == 0


def test_an_event_the_agency_is_not_sent_does_not_hold_a_removal_behind_the_backlog(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    """A debtor files a correction (or an agency acknowledges a notice), then is removed: those
    events of the listing are never pushed, and its removal still goes through the lane."""
    with running_receiver() as receiver:
        sub, held = held_listing(registry, court, admin, settings, receiver)
        publish(registry, court, BACKLOG)
        with registry.engine.begin() as conn:
            append_events(
                conn,
                [EventDraft(EventType.CORRECTION_FILED, "public", court_code=court.code, listing_id=held)],
                utcnow(),
            )
        remove(registry, court, held)
        before = len(receiver.received)
        pump(fast(settings), caught_up(registry.engine, sub))
    sent = receiver.received[before:]
    assert sent[0]["listing_id"] == held and sent[0]["type"] == "listing.removed"
    (lane,) = lane_requests(receiver)
    assert [e["listing_id"] for e in lane["events"]] == [held]
    assert removals(receiver.received).count(held) == 1
