"""Keeps a search engine in step with the registry: follow the log, reconcile, for every engine.

The follower reads the listing events above the engine's cursor, loads the current rows of
the listings they name (events carry no personal data), and has the engine upsert the active
ones and delete the others, its cursor moving in the same transaction
(`registry.eventlog.readers`): at-least-once, and idempotent because a document is the
listing as it stands now. The reconciler compares what the engine stores with the active
listings without claiming the cursor (the follower goes on; what it has yet to apply is left
to it), then repairs what differs under the claim, in a short transaction, so its repair
never interleaves with the follower, nor with a rebuild's swap.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import partial
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, select

from registry import progress
from registry.eventlog.readers import (
    LogEvent,
    LogReader,
    Process,
    claim_cursor,
    cursor_position,
    listings_changed_since,
)
from registry.eventlog.types import LISTING_EVENTS
from registry.listings.models import Listing
from search.documents import Document, all_active_documents, listing_states, load_documents
from search.interface import SearchEngine

logger = logging.getLogger("search.indexer")

EVENTS_PER_STEP = 5000
# The reconcile's progress bar moves every this many listings checked.
PROGRESS_STEP = 10_000
# Documents compared whole per call of the engine (the deep reconcile).
_COMPARE_CHUNK = 500


def changed_listings(events: Sequence[LogEvent]) -> list[str]:
    """Distinct listing ids named by the events, in first-seen order."""
    return list(dict.fromkeys(event.listing_id for event in events if event.listing_id is not None))


def apply_events(engine: SearchEngine, conn: Connection, events: Sequence[LogEvent], now: datetime) -> None:
    active, gone = load_documents(conn, changed_listings(events))
    engine.apply(conn, active, gone)


def prepare_events(engine: SearchEngine, conn: Connection, events: Sequence[LogEvent]) -> Process:
    """The documents of the listings the events name, built on a read connection before the
    cursor is claimed (pinyin and the public entry are most of the follower's time, and on
    SQLite the chunks of a batch being ingested wait for the write lock while it is held);
    under the claim, each listing's version and status are read again, and a listing changed
    meanwhile (a removal above all) has its document built from what it is then."""
    listing_ids = changed_listings(events)
    built_active, _ = load_documents(conn, listing_ids)
    built = {doc.listing_id: doc for doc in built_active}

    def apply(conn: Connection, _events: Sequence[LogEvent], _now: datetime) -> None:
        states = listing_states(conn, listing_ids)
        changed = [
            listing_id
            for listing_id in listing_ids
            if (
                states.get(listing_id) != (built[listing_id].version, "active")
                if listing_id in built
                else states.get(listing_id, (0, ""))[1] == "active"
            )
        ]
        documents = {listing_id: doc for listing_id, doc in built.items() if listing_id not in changed}
        if changed:
            rebuilt, _ = load_documents(conn, changed)
            documents.update((doc.listing_id, doc) for doc in rebuilt)
        # In the log's order, as `load_documents` gives them: the index's newest-first order.
        active = [documents[listing_id] for listing_id in listing_ids if listing_id in documents]
        engine.apply(conn, active, [listing_id for listing_id in listing_ids if listing_id not in documents])

    return apply


def index_follower(engine: SearchEngine) -> LogReader:
    """The log reader that keeps `engine` up to date, on the engine's cursor."""
    return LogReader(
        engine.cursor,
        partial(apply_events, engine),
        LISTING_EVENTS,
        batch=EVENTS_PER_STEP,
        prepare=partial(prepare_events, engine),
    )


@dataclass
class Reconciliation:
    checked: int = 0
    missing: int = 0  # active listings without a document
    stale: int = 0  # documents that differ from what the listing gives now
    extra: int = 0  # documents of listings that are not active (or do not exist)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# (listing id, version, its document: built by the deep check only)
Expected = tuple[str, int, Document | None]


def _expected(conn: Connection, deep: bool) -> Iterator[Expected]:
    """Every active listing in listing-id order; `deep`: with its document built."""
    if deep:
        for chunk in all_active_documents(conn):
            for doc in chunk:
                yield doc.listing_id, doc.version, doc
        return
    rows = conn.execute(
        select(Listing.id, Listing.version)
        .where(Listing.status == "active")
        .order_by(Listing.id)
        .execution_options(yield_per=10_000)
    )
    for listing_id, version in rows:
        yield listing_id, version, None


def _paired(
    expected: Iterable[Expected], stored: Iterable[tuple[str, int]]
) -> Iterator[tuple[str, Expected | None, int | None]]:
    """(listing id, what the registry expects or None, the stored version or None), merging
    two streams in listing-id order: memory stays flat however large the index."""
    tagged = heapq.merge(
        ((item[0], 0, item) for item in expected), ((listing_id, 1, v) for listing_id, v in stored)
    )
    for listing_id, sides in groupby(tagged, key=itemgetter(0)):
        ours: Any = None
        theirs: Any = None
        for _, side, value in sides:
            if side:
                theirs = value
            else:
                ours = value
        yield listing_id, ours, theirs


@dataclass
class _Drift:
    """What a comparison found: the listings whose document is missing or stale (or, deep,
    differs whole), and the documents whose listing is not active; none of them named by an
    event the follower had yet to apply."""

    result: Reconciliation
    missing: list[str]
    stale: list[str]
    extra: list[str]


def _compare(conn: Connection, engine: SearchEngine, deep: bool) -> _Drift:
    """Compare the engine's documents with the active listings without claiming the cursor.

    The follower goes on meanwhile, so a listing it is bringing up to date may differ for a
    moment without any drift: every listing named by an event above the cursor's position
    (read before the two streams; the events read after them) is left to it."""
    position = cursor_position(conn, engine.cursor)
    result = Reconciliation()
    missing: list[str] = []
    stale: list[str] = []
    extra: list[str] = []
    same: list[Document] = []  # deep: stored at their version, compared whole in chunks
    for listing_id, ours, stored in _paired(_expected(conn, deep), engine.stored_versions(conn)):
        if ours is not None and result.checked % PROGRESS_STEP == PROGRESS_STEP - 1:
            progress.advance(PROGRESS_STEP)
        if ours is None:
            extra.append(listing_id)
            continue
        result.checked += 1
        if stored is None:
            missing.append(listing_id)
        elif stored != ours[1]:
            stale.append(listing_id)
        elif ours[2] is not None:
            same.append(ours[2])
            if len(same) == _COMPARE_CHUNK:
                stale.extend(_differing(conn, engine, same))
                same = []
    stale.extend(_differing(conn, engine, same))
    progress.advance(result.checked % PROGRESS_STEP)
    in_flight = listings_changed_since(conn, position)
    return _Drift(
        result,
        [listing_id for listing_id in missing if listing_id not in in_flight],
        [listing_id for listing_id in stale if listing_id not in in_flight],
        [listing_id for listing_id in extra if listing_id not in in_flight],
    )


def reconcile(conn: Connection, engine: SearchEngine, *, deep: bool = False) -> Reconciliation:
    """Find and repair drift between the active listings and the engine's documents, all in
    the caller's write transaction (the job and the command use `reconcile_with`).

    The default check compares ids and versions (seconds at a million listings: the periodic
    job); `deep` builds every document and has the engine compare it whole, which costs about
    a reindex.
    """
    drift = _compare(conn, engine, deep)
    claim_cursor(conn, engine.cursor)
    return _repair(conn, engine, drift)


def _repair(conn: Connection, engine: SearchEngine, drift: _Drift) -> Reconciliation:
    """Under the cursor's claim: the drifted listings' documents as they stand now (loaded
    again: a listing may have changed since the comparison), and the extra documents of
    listings that are still not active."""
    result = drift.result
    docs, vanished = load_documents(conn, drift.missing + drift.stale)
    found = {doc.listing_id for doc in docs}
    active = _active(conn, drift.extra)
    extra = [listing_id for listing_id in drift.extra if listing_id not in active]
    result.missing = sum(1 for listing_id in drift.missing if listing_id in found)
    result.stale = sum(1 for listing_id in drift.stale if listing_id in found)
    result.extra = len(extra) + len(vanished)
    if docs or extra or vanished:
        engine.repair(conn, docs, extra + vanished)
        logger.warning("search reconcile repaired drift: %s", result.as_dict())
    return result


def _active(conn: Connection, listing_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(listing_ids), 500):
        chunk = listing_ids[start : start + 500]
        query = select(Listing.id).where(Listing.id.in_(chunk), Listing.status == "active")
        found.update(conn.execute(query).scalars())
    return found


def _differing(conn: Connection, engine: SearchEngine, documents: list[Document]) -> list[str]:
    if not documents:
        return []
    return list(engine.differing(conn, documents))


def reconcile_with(
    writer: Engine, engine: SearchEngine, *, deep: bool = False, reader: Engine | None = None
) -> dict[str, int]:
    """`reconcile`, the comparison on `reader` and the repair in a short transaction of
    `writer` (a synchronous writer engine) that claims the cursor.

    The comparison reads every active listing and every document (minutes at 5,000,000 on
    PostgreSQL); under the claim the follower, and with it every removal's way out of public
    search, would wait for all of it (on SQLite, with a writer engine, every write would).
    `reader` defaults to `writer` (tests)."""
    with (reader or writer).connect() as conn:
        drift = _compare(conn, engine, deep)
    with writer.begin() as conn:
        claim_cursor(conn, engine.cursor)
        return _repair(conn, engine, drift).as_dict()
