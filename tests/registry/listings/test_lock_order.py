"""One lock order for every writer: the log head, then listing rows (no deadlocks on PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from registry.listings.services import expire_due
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry


def test_expiry_waits_for_the_log_head_before_it_locks_listing_rows(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers with one database lock: there is no row lock order")
    body = registry.person_listing(court, grounds=["evades_enforcement"], term_years=2)
    with registry.http(court.api_key) as http:
        created = http.post("/v1/listings", json=registry.envelope(court, body))
    assert created.status_code == 201, created.text
    listing_id = created.json()["listing_id"]
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE listings SET expires_on = :d WHERE id = :id"),
            {"d": registry.today - timedelta(days=1), "id": listing_id},
        )

    expired: list[int] = []

    def expire() -> None:
        with engine.begin() as conn:
            expired.append(expire_due(conn, today=registry.today, now=utcnow()))

    # A removal that holds the log head next locks its listing row: expiry, started meanwhile,
    # must be queued on the head, not holding the row (which is the deadlock).
    with engine.connect() as removal:
        removal.begin()
        removal.execute(sa.text("SELECT last_seq FROM log_head WHERE id = 1 FOR UPDATE"))
        worker = threading.Thread(target=expire)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), "expiry did not wait for the log head"
        removal.execute(
            sa.text("SELECT id FROM listings WHERE id = :id FOR UPDATE NOWAIT"), {"id": listing_id}
        )
        removal.rollback()
    worker.join(timeout=30)
    assert expired == [1]
