"""The feeds' reader of the event log: keeps `publications` at each listing's latest event.

At-least-once and idempotent: the rows of a batch and the cursor move in one transaction,
and replaying an event rewrites the same row.
"""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select, text

from publishing.feeds.models import Publication
from registry.bulk import bulk_insert
from registry.eventlog.cursors import cursor_position, set_cursor
from registry.eventlog.models import Event
from registry.eventlog.types import EventType
from registry.listings.models import Listing

CURSOR_NAME = "publishing.feeds"
EVENT_NAMES = {
    EventType.LISTING_PUBLISHED: "published",
    EventType.LISTING_AMENDED: "amended",
    EventType.LISTING_REMOVED: "removed",
    EventType.LISTING_EXPIRED: "expired",
}
PUBLICATIONS = cast(Table, Publication.__table__)
_CHUNK = 500
# PostgreSQL: one reader at a time (transaction-level advisory lock; an arbitrary fixed key).
_READER_LOCK = 5005


def follow_log(conn: Connection, limit: int = 5000) -> int:
    """Process up to `limit` events after the cursor; returns how many were read."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _READER_LOCK})
    position = cursor_position(conn, CURSOR_NAME)
    events = conn.execute(
        select(Event.seq, Event.type, Event.occurred_at, Event.listing_id, Event.data)
        .where(Event.seq > position)
        .order_by(Event.seq)
        .limit(limit)
    ).all()
    if not events:
        return 0
    latest: dict[str, Any] = {}
    for event in events:
        if event.type in EVENT_NAMES and event.listing_id is not None:
            latest[event.listing_id] = event  # later events of a listing replace earlier ones
    ids = list(latest)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        listings = conn.execute(
            select(Listing.id, Listing.province_code, Listing.court_code, Listing.debtor_kind).where(
                Listing.id.in_(chunk)
            )
        ).all()
        conn.execute(delete(Publication).where(Publication.listing_id.in_(chunk)))
        rows = []
        for listing in listings:
            event = latest[listing.id]
            name = EVENT_NAMES[event.type]
            removal = name in {"removed", "expired"}
            rows.append(
                {
                    "seq": event.seq,
                    "listing_id": listing.id,
                    "event": name,
                    "occurred_at": event.occurred_at,
                    "province_code": listing.province_code,
                    "court_code": listing.court_code,
                    "debtor_kind": listing.debtor_kind,
                    "reason": event.data.get("reason") if removal else None,
                    "effective_on": date.fromisoformat(event.data["effective_on"]) if removal else None,
                }
            )
        rows.sort(key=lambda row: row["seq"])
        bulk_insert(conn, PUBLICATIONS, rows)
    set_cursor(conn, CURSOR_NAME, events[-1].seq)
    return len(events)
