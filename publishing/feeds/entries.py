"""Publication and removal items for feeds, the delta API and the exports' change files.

Every item is built from `registry.listings.disclosure.public_entry`, the one public
allow-list. A removal notice names the entry by its id and case number only, with its court
and why and when it left the list: once a listing is removed or expires, no public surface
names the person again (no name, no number). A publication item is shown only while its
listing is active; once the listing leaves the list, only its removal notice remains.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Connection, Row, Select, select

from publishing.feeds.models import Publication
from publishing.feeds.reader import CURSOR_NAME, publication_event
from registry.eventlog.models import Event, ReaderCursor
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS
from registry.eventlog.types import REMOVAL_EVENTS as REMOVAL_EVENT_TYPES
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
    """Where the feeds' reader is: its position and the chain hash of the event there (so
    that a log emptied and refilled to the same position is told apart)."""

    position: int
    event_hash: bytes


def feed_state(conn: Connection) -> FeedState:
    """Where the feeds' reader is (the `publications` table's own position)."""
    row = conn.execute(
        select(ReaderCursor.position, Event.hash)
        .join(Event, Event.seq == ReaderCursor.position, isouter=True)
        .where(ReaderCursor.name == CURSOR_NAME)
    ).first()
    if row is None:
        return FeedState(0, b"")
    return FeedState(int(row.position), bytes(row.hash or b""))


# How far past the feeds' reader a request reads the log itself. The reader writes the
# `publications` rows, so on SQLite it waits for the write lock, behind a batch's chunks and
# the search follower: seconds during a large batch. The events it has yet to write are
# committed already; a request projects them as it will (each listing's latest event), so a
# removal leaves the feeds and the delta API when it commits (issue 18 #11). Bounded: past
# this many log events (ten of the reader's steps) the answers stop at the reader's position
# plus the bound.
TAIL_EVENTS = 50_000


class TailRow(NamedTuple):
    """A `publications` row projected from the log's tail (the same fields)."""

    seq: int
    listing_id: str
    event: str
    occurred_at: datetime
    province_code: str | None
    court_code: str
    debtor_kind: str
    reason: str | None
    effective_on: date | None


@dataclass(frozen=True)
class FeedView:
    """What a page answers from: the table up to the reader's position and the log's tail
    projected past it. `state.position` is the end of the tail, the position the answers are at."""

    state: FeedState
    reader_position: int
    tail: tuple[TailRow, ...]  # each listing's latest event in the tail, oldest first
    superseded: frozenset[int]  # seq of the table rows whose listing has a tail row


@dataclass(frozen=True)
class _Tail:
    """A tail projected from `reader` (position, chain hash) up to `upto`: each listing's row."""

    reader: tuple[int, bytes]
    upto: int
    upto_hash: bytes
    rows: dict[str, TailRow]
    view: FeedView


class _TailCache:
    """The tail last projected: requests share it until the log moves. When the head moves
    (several times a second while a batch is written) only the new events are read; when the
    reader moves, the rows it has now written leave the tail and the rest is kept. Extended
    only while the event at its end still has its chain hash, so a log emptied and refilled
    to the same positions starts anew."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tail: _Tail | None = None

    def get(self) -> _Tail | None:
        with self._lock:
            return self._tail

    def put(self, tail: _Tail) -> None:
        with self._lock:
            self._tail = tail


_TAILS = _TailCache()


def _hash_at(conn: Connection, seq: int) -> bytes | None:
    found = conn.execute(select(Event.hash).where(Event.seq == seq)).scalar()
    return None if found is None else bytes(found)


def _superseded(conn: Connection, listing_ids: Sequence[str]) -> set[int]:
    """The table rows (all at or below the reader's position) of these listings."""
    found: set[int] = set()
    for start in range(0, len(listing_ids), _CHUNK):
        chunk = listing_ids[start : start + _CHUNK]
        found.update(conn.execute(select(Publication.seq).where(Publication.listing_id.in_(chunk))).scalars())
    return found


def feed_view(conn: Connection) -> FeedView:
    reader = feed_state(conn)
    last_seq, last_hash = head(conn)
    upto = min(last_seq, reader.position + TAIL_EVENTS)
    if upto <= reader.position:
        return FeedView(reader, reader.position, (), frozenset())
    upto_hash = last_hash if upto == last_seq else _hash_at(conn, upto) or b""
    here = (reader.position, reader.event_hash)
    base = _TAILS.get()
    if base is not None and base.reader == here and (base.upto, base.upto_hash) == (upto, upto_hash):
        return base.view
    if (
        base is not None
        and base.reader[0] <= reader.position
        and base.upto <= upto
        and _hash_at(conn, base.upto) == base.upto_hash
    ):
        after = max(base.upto, reader.position)
        if base.reader == here:
            rows, superseded = dict(base.rows), set(base.view.superseded)
        else:
            # The reader has written the rows of the events up to its position since.
            rows = {listing_id: row for listing_id, row in base.rows.items() if row.seq > reader.position}
            superseded = _superseded(conn, list(rows))
    else:
        after, rows, superseded = reader.position, {}, set()
    events = conn.execute(
        select(Event.seq, Event.type, Event.listing_id, Event.occurred_at)
        .where(Event.seq > after, Event.seq <= upto, Event.type.in_(sorted(LISTING_EVENTS)))
        .order_by(Event.seq)
    ).all()
    latest = {event.listing_id: event for event in events if event.listing_id is not None}
    # Only a removal's row needs the event's data (its reason and date).
    removals = [event.seq for event in latest.values() if event.type in REMOVAL_EVENT_TYPES]
    data: dict[int, dict[str, Any]] = {}
    for start in range(0, len(removals), _CHUNK):
        chunk = removals[start : start + _CHUNK]
        found = conn.execute(select(Event.seq, Event.data).where(Event.seq.in_(chunk)))
        data.update((int(seq), value) for seq, value in found)
    places = {row.listing_id: (row.province_code, row.court_code, row.debtor_kind) for row in rows.values()}
    new_ids = [listing_id for listing_id in latest if listing_id not in rows]
    for start in range(0, len(new_ids), _CHUNK):
        chunk = new_ids[start : start + _CHUNK]
        listings = conn.execute(
            select(Listing.id, Listing.province_code, Listing.court_code, Listing.debtor_kind).where(
                Listing.id.in_(chunk)
            )
        )
        for listing in listings:
            places[listing.id] = (listing.province_code, listing.court_code, listing.debtor_kind)
    superseded |= _superseded(conn, new_ids)
    for listing_id, event in latest.items():
        if (place := places.get(listing_id)) is None:
            continue
        removal = data.get(event.seq)
        province_code, court_code, debtor_kind = place
        rows[listing_id] = TailRow(
            seq=event.seq,
            listing_id=listing_id,
            event=publication_event(event.type),
            occurred_at=event.occurred_at,
            province_code=province_code,
            court_code=court_code,
            debtor_kind=debtor_kind,
            reason=removal.get("reason") if removal else None,
            effective_on=date.fromisoformat(removal["effective_on"]) if removal else None,
        )
    view = FeedView(
        FeedState(upto, upto_hash),
        reader.position,
        tuple(sorted(rows.values(), key=lambda row: row.seq)),
        frozenset(superseded),
    )
    _TAILS.put(_Tail(here, upto, upto_hash, rows, view))
    return view


# Up to this many replaced rows are left out by the statement itself (bound parameters:
# SQLite allows 32,766 a statement); more are skipped as the rows are read.
_EXCLUDED_IN_SQL = 500


def _table_rows(
    conn: Connection, view: FeedView, query: Select[*tuple[Any, ...]], want: int, newest_first: bool
) -> list[Any]:
    """The table's side of a page: `want` rows of `query` (its filters), up to the reader's
    position read with the tail, in seq order, without the rows the tail replaces."""
    query = query.where(Publication.seq <= view.reader_position).order_by(
        Publication.seq.desc() if newest_first else Publication.seq
    )
    if len(view.superseded) <= _EXCLUDED_IN_SQL:
        if view.superseded:
            query = query.where(Publication.seq.not_in(sorted(view.superseded)))
        return list(conn.execute(query.limit(want)).all()) if want > 0 else []
    rows: list[Any] = []
    while len(rows) < want:
        asked = want - len(rows) + _CHUNK
        page = conn.execute(query.limit(asked)).all()
        rows += [row for row in page if row.seq not in view.superseded]
        if len(page) < asked:
            break
        last = page[-1].seq
        query = query.where(Publication.seq < last if newest_first else Publication.seq > last)
    return rows[:want]


def _wanted(row: Any, filters: FeedFilters) -> bool:
    return (
        (filters.province is None or row.province_code == filters.province)
        and (filters.court is None or row.court_code == filters.court)
        and (filters.kind is None or row.debtor_kind == filters.kind)
    )


def feed_page(
    conn: Connection, view: FeedView, filters: FeedFilters, before: int | None, size: int, today: date
) -> tuple[list[PublicationItem], int | None]:
    """Newest first; returns the items and the `before` of the next (older) page, if any."""
    newest = [
        row for row in reversed(view.tail) if (before is None or row.seq < before) and _wanted(row, filters)
    ][: size + 1]
    query = select(*_PAGE_COLUMNS)
    if filters.province is not None:
        query = query.where(Publication.province_code == filters.province)
    if filters.court is not None:
        query = query.where(Publication.court_code == filters.court)
    if filters.kind is not None:
        query = query.where(Publication.debtor_kind == filters.kind)
    if before is not None:
        query = query.where(Publication.seq < before)
    # Every tail row is newer than every table row: the tail comes first.
    rows = newest + _table_rows(conn, view, query, size + 1 - len(newest), newest_first=True)
    more = len(rows) > size
    rows = rows[:size]
    return build_items(conn, rows, today), (rows[-1].seq if more else None)


def delta_page(
    conn: Connection, after: int, limit: int, today: date
) -> tuple[list[PublicationItem], int, int]:
    """Items with seq in (after, position], oldest first; returns (items, next_after, position).

    `position` is the end of the tail read with the table (`feed_view`): everything at or
    below it has been projected, so a page that is not full can move the cursor to it.
    """
    view = feed_view(conn)
    position = view.state.position
    query = select(*_PAGE_COLUMNS).where(Publication.seq > after)
    rows = _table_rows(conn, view, query, limit, newest_first=False)
    rows += [row for row in view.tail if row.seq > after][: limit - len(rows)]
    next_after = rows[-1].seq if len(rows) == limit else max(after, position)
    return build_items(conn, rows, today), next_after, position
