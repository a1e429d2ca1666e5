"""The feeds' reader of the event log: keeps `publications` at each listing's latest event.

Idempotent: replaying an event rewrites the same row (see `registry.eventlog.readers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, select

from publishing.feeds.models import Publication
from registry.bulk import bulk_insert
from registry.eventlog.readers import LogEvent, LogReader, follow
from registry.eventlog.types import LISTING_EVENTS, REMOVAL_EVENTS
from registry.listings.models import Listing
from registry.runtime import Services

CURSOR_NAME = "publishing.feeds"
# The scheduler job that runs this reader (`publishing.feeds.plugin`).
JOB = "publications"
PUBLICATIONS = cast(Table, Publication.__table__)
_CHUNK = 500


def record_publications(conn: Connection, events: Sequence[LogEvent], now: datetime) -> None:
    # Later events of a listing replace earlier ones.
    latest = {event.listing_id: event for event in events if event.listing_id is not None}
    ids = list(latest)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        listings = conn.execute(
            select(Listing.id, Listing.province_code, Listing.court_code, Listing.debtor_kind).where(
                Listing.id.in_(chunk)
            )
        ).all()
        conn.execute(delete(Publication).where(Publication.listing_id.in_(chunk)))
        rows = [_publication(latest[listing.id], listing) for listing in listings]
        rows.sort(key=lambda row: row["seq"])
        bulk_insert(conn, PUBLICATIONS, rows)


READER = LogReader(CURSOR_NAME, record_publications, LISTING_EVENTS, batch=5000)


async def follow_publications(services: Services) -> int:
    """The scheduler job: catch the publications up with the log (in a worker thread, as
    every reader: `registry.eventlog.readers.follow`)."""
    return await follow(services.db, READER)


def publication_event(event_type: str) -> str:
    """What feeds and exports call a listing event: published, amended, removed or expired."""
    return event_type.removeprefix("listing.")


def _publication(event: LogEvent, listing: Any) -> dict[str, Any]:
    removal = event.type in REMOVAL_EVENTS
    return {
        "seq": event.seq,
        "listing_id": listing.id,
        "event": publication_event(event.type),
        "occurred_at": event.occurred_at,
        "province_code": listing.province_code,
        "court_code": listing.court_code,
        "debtor_kind": listing.debtor_kind,
        "reason": event.data.get("reason") if removal else None,
        "effective_on": date.fromisoformat(event.data["effective_on"]) if removal else None,
    }
