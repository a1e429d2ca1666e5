"""Calls that must take effect once although they arrive at once: a notice's acknowledgement
and objection sent again by a client retrying after a timeout, and an admin's pause, resume
or replay while the revocation's reader ends the subscription.

On PostgreSQL each test holds the log head, as any writer may, until every call waits behind
it, and only then lets them go: a call that read the row before it locked it would find it
unanswered, or not ended, and act on that. On SQLite writers go one at a time, so the calls
are only sent together; the outcome is asserted all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import pytest
import sqlalchemy as sa

from publishing.sync.notices import notice_reader
from publishing.sync.revocations import end_client_subscriptions
from registry.eventlog.readers import step
from registry.eventlog.services import lock_head
from registry.timeutil import utcnow
from tests.publishing.sync.test_sync import agency, subscribe
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import publish_one

WAITING = sa.text(
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
)


def behind_the_head(
    engine: sa.Engine,
    calls: Sequence[Callable[[], httpx.Response]],
    holding: Callable[[sa.Connection], object] = lambda conn: None,
) -> list[httpx.Response]:
    """The calls' answers, sent at once; on PostgreSQL released together from behind a
    transaction that holds the log head (and does `holding`) until all of them wait."""
    with ThreadPoolExecutor(len(calls)) as pool:
        if engine.dialect.name == "sqlite":
            return [future.result() for future in [pool.submit(call) for call in calls]]
        with engine.begin() as conn:
            lock_head(conn)
            holding(conn)
            futures = [pool.submit(call) for call in calls]
            deadline = time.monotonic() + 20
            # Autocommit: a transaction sees the activity statistics as they were at its start.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
                while watcher.execute(WAITING).scalar_one() < len(calls):
                    assert time.monotonic() < deadline, "the calls never all waited for a lock"
                    time.sleep(0.02)
        return [future.result() for future in futures]


def notice(registry: Registry, court: CourtHandle, admin: httpx.Client) -> tuple[str, str]:
    """An agency's key and its one notice."""
    client_id, key = agency(registry)
    subscribe(admin, client_id, "credit_reference", "pull")
    publish_one(registry, court, registry.person_listing(court))
    with registry.engine.begin() as conn:
        step(conn, notice_reader(3), utcnow())
    with registry.http(key) as http:
        [issued] = http.get("/v1/notices").json()
    return key, str(issued["id"])


def logged(engine: sa.Engine, event_type: str) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM events WHERE type = :type")
        return int(conn.execute(query, {"type": event_type}).scalar_one())


def post(registry: Registry, key: str, path: str, body: object = None) -> httpx.Response:
    with registry.http(key) as http:
        return http.post(path, json=body)


def test_an_objection_sent_four_times_at_once_is_filed_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, engine: sa.Engine
) -> None:
    key, notice_id = notice(registry, court, admin)
    path = f"/v1/notices/{notice_id}/objection"
    answers = behind_the_head(
        engine, [partial(post, registry, key, path, {"text": f"第{i}次提交的异议"}) for i in range(4)]
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [a.text for a in answers]
    [filed] = [a.json() for a in answers if a.status_code == 201]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"already_objected"}
    # The objection answered 201 is the one on record, routed to the court, and logged once.
    with registry.http(court.api_key) as http:
        [routed] = http.get("/v1/notices/objections").json()
    assert routed["id"] == notice_id and routed["objection"] == filed["objection"]
    assert routed["objected_at"] == filed["objected_at"]
    assert logged(engine, "notice.objected") == 1


def test_an_acknowledgement_sent_four_times_at_once_counts_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, engine: sa.Engine
) -> None:
    key, notice_id = notice(registry, court, admin)
    path = f"/v1/notices/{notice_id}/acknowledge"
    answers = behind_the_head(engine, [partial(post, registry, key, path) for _ in range(4)])
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    # Every retry answers as a repeated acknowledgement does: the first one's time.
    [acknowledged] = {a.json()["acknowledged_at"] for a in answers}
    with registry.http(key) as http:
        assert http.get("/v1/notices").json()[0]["acknowledged_at"] == acknowledged
    assert logged(engine, "notice.acknowledged") == 1


@pytest.mark.parametrize(
    ("action", "event_type"),
    [("pause", "sync.subscription_paused"), ("resume", "sync.subscription_resumed"),
     ("replay", "sync.subscription_replayed")],
)  # fmt: skip
def test_a_subscription_ended_while_an_admin_changes_it_stays_ended(
    registry: Registry, admin: httpx.Client, engine: sa.Engine, action: str, event_type: str
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite writers go one at a time: no call runs while the reader ends a subscription")
    client_id, _ = agency(registry)
    sub = subscribe(admin, client_id, "credit_reference", "pull")
    if action == "resume":
        assert admin.post(f"/v1/sync/subscriptions/{sub}/pause").status_code == 200
    logged_before = logged(engine, event_type)
    [answer] = behind_the_head(
        engine,
        [
            partial(
                admin.post,
                f"/v1/sync/subscriptions/{sub}/{action}",
                json={"from_seq": 0} if action == "replay" else None,
            )
        ],
        # The revocation's reader, ending the client's subscriptions with the head held.
        holding=lambda conn: end_client_subscriptions(conn, client_id, utcnow()),
    )
    assert answer.status_code == 409 and answer.json()["code"] == "subscription_ended", answer.text
    assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["state"] == "ended"
    assert logged(engine, event_type) == logged_before
