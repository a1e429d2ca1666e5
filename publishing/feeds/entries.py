"""Publication and removal items for feeds, the delta API and the exports' change files.

Every item is built from `registry.listings.disclosure.public_entry`, the one public
allow-list. A removal notice names the entry by its id and case number only, with its court
and why and when it left the list: once a listing is removed or expires, no public surface
names the person again (no name, no number). A publication item is shown only while its
listing is active; once the listing leaves the list, only its removal notice remains.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import Connection, Row, select

from publishing.feeds.models import Publication
from publishing.feeds.reader import CURSOR_NAME
from registry.eventlog.models import Event, ReaderCursor
from registry.listings.disclosure import PublicEntry, public_columns, public_entry
from registry.listings.models import Listing

REMOVAL_EVENTS = frozenset({"removed", "expired"})
_CHUNK = 500


class RemovalNotice(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    court_code: str
    court_name: str
    province_code: str | None
    province: str | None
    case_number: str
    reason: str
    effective_on: date


class PublicationItem(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    event: str  # published, amended, removed, expired
    occurred_at: datetime
    entry: PublicEntry | None = None  # publications and amendments
    removal: RemovalNotice | None = None  # removals and expiries


def removal_notice(entry: PublicEntry, reason: str, effective_on: date) -> RemovalNotice:
    return RemovalNotice(
        id=entry.id,
        court_code=entry.court_code,
        court_name=entry.court_name,
        province_code=entry.province_code,
        province=entry.province,
        case_number=entry.case_number,
        reason=reason,
        effective_on=effective_on,
    )


def plain_rows(rows: Sequence[Row[Any]]) -> list[Any]:
    """The rows as named tuples. A SQLAlchemy Row pays on every attribute read and
    public_entry reads sixteen: measured 12 µs an entry from Rows, 6 µs from these."""
    if not rows:
        return []
    plain = namedtuple("PlainRow", rows[0]._fields)  # type: ignore[misc]
    return [plain._make(row) for row in rows]


def build_items(conn: Connection, rows: Sequence[Any], today: date) -> list[PublicationItem]:
    """`rows` carry seq, listing_id, event, occurred_at, reason, effective_on (in the order wanted)."""
    listings: dict[str, Any] = {}
    ids = sorted({row.listing_id for row in rows})
    for start in range(0, len(ids), _CHUNK):
        found = conn.execute(public_columns().where(Listing.id.in_(ids[start : start + _CHUNK]))).all()
        for listing in plain_rows(found):
            listings[listing.id] = listing
    items = []
    for row in rows:
        listing = listings.get(row.listing_id)
        if listing is None:
            continue
        if row.event in REMOVAL_EVENTS:
            notice = removal_notice(public_entry(listing, today), row.reason, row.effective_on)
            items.append(
                PublicationItem(seq=row.seq, event=row.event, occurred_at=row.occurred_at, removal=notice)
            )
        elif listing.status == "active":
            # Not active but not yet replaced by its removal row: the reader is behind; show nothing.
            entry = public_entry(listing, today)
            items.append(
                PublicationItem(seq=row.seq, event=row.event, occurred_at=row.occurred_at, entry=entry)
            )
    return items


_PAGE_COLUMNS = (
    Publication.seq,
    Publication.listing_id,
    Publication.event,
    Publication.occurred_at,
    Publication.reason,
    Publication.effective_on,
)


@dataclass(frozen=True)
class FeedFilters:
    province: str | None = None
    court: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class FeedState:
    """Where the feeds' reader is: its position, the chain hash of the event there (so that
    a log emptied and refilled to the same position is told apart), and when it moved."""

    position: int
    event_hash: bytes
    updated_at: datetime | None


def feed_state(conn: Connection) -> FeedState:
    row = conn.execute(
        select(ReaderCursor.position, ReaderCursor.updated_at, Event.hash)
        .join(Event, Event.seq == ReaderCursor.position, isouter=True)
        .where(ReaderCursor.name == CURSOR_NAME)
    ).first()
    if row is None:
        return FeedState(0, b"", None)
    return FeedState(int(row.position), bytes(row.hash or b""), row.updated_at)


def feed_page(
    conn: Connection, filters: FeedFilters, before: int | None, size: int, today: date
) -> tuple[list[PublicationItem], int | None]:
    """Newest first; returns the items and the `before` of the next (older) page, if any."""
    query = select(*_PAGE_COLUMNS).order_by(Publication.seq.desc()).limit(size + 1)
    if filters.province is not None:
        query = query.where(Publication.province_code == filters.province)
    if filters.court is not None:
        query = query.where(Publication.court_code == filters.court)
    if filters.kind is not None:
        query = query.where(Publication.debtor_kind == filters.kind)
    if before is not None:
        query = query.where(Publication.seq < before)
    rows = conn.execute(query).all()
    more = len(rows) > size
    rows = rows[:size]
    return build_items(conn, rows, today), (rows[-1].seq if more else None)


def delta_page(
    conn: Connection, after: int, limit: int, today: date
) -> tuple[list[PublicationItem], int, int]:
    """Items with seq in (after, position], oldest first; returns (items, next_after, position).

    Bounded by the reader's position read first: everything at or below it has been
    processed, so a page that is not full can move the cursor to the position itself.
    """
    position = feed_state(conn).position
    rows = conn.execute(
        select(*_PAGE_COLUMNS)
        .where(Publication.seq > after, Publication.seq <= position)
        .order_by(Publication.seq)
        .limit(limit)
    ).all()
    next_after = rows[-1].seq if len(rows) == limit else max(after, position)
    return build_items(conn, rows, today), next_after, position
