"""Keeps a search engine in step with the registry: follow the log, reconcile, for every engine.

The follower reads the listing events above the engine's cursor, loads the current rows of
the listings they name (events carry no personal data), and has the engine upsert the active
ones and delete the others, its cursor moving in the same transaction
(`registry.eventlog.readers`): at-least-once, and idempotent because a document is the
listing as it stands now. The reconciler compares what the engine stores with the active
listings and repairs the difference; it claims the same cursor, so it never interleaves with
the follower, nor with a rebuild's swap.
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
from registry.eventlog.readers import LogEvent, LogReader, claim_cursor
from registry.eventlog.types import LISTING_EVENTS
from registry.listings.models import Listing
from search.documents import Document, all_active_documents, load_documents
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


def index_follower(engine: SearchEngine) -> LogReader:
    """The log reader that keeps `engine` up to date, on the engine's cursor."""
    return LogReader(engine.cursor, partial(apply_events, engine), LISTING_EVENTS, batch=EVENTS_PER_STEP)


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


def reconcile(conn: Connection, engine: SearchEngine, *, deep: bool = False) -> Reconciliation:
    """Find and repair drift between the active listings and the engine's documents, in the
    caller's write transaction.

    The default check compares ids and versions (seconds at a million listings: the periodic
    job); `deep` builds every document and has the engine compare it whole, which costs about
    a reindex.
    """
    claim_cursor(conn, engine.cursor)
    result = Reconciliation()
    missing: list[Expected] = []
    stale: list[Expected] = []
    extra: list[str] = []
    same: list[Document] = []  # deep: stored at their version, compared whole in chunks
    compared: list[Document] = []
    for listing_id, ours, stored in _paired(_expected(conn, deep), engine.stored_versions(conn)):
        if ours is not None and result.checked % PROGRESS_STEP == PROGRESS_STEP - 1:
            progress.advance(PROGRESS_STEP)
        if ours is None:
            extra.append(listing_id)
            continue
        result.checked += 1
        if stored is None:
            missing.append(ours)
        elif stored != ours[1]:
            stale.append(ours)
        elif ours[2] is not None:
            same.append(ours[2])
            if len(same) == _COMPARE_CHUNK:
                compared.extend(_differing(conn, engine, same))
                same = []
    compared.extend(_differing(conn, engine, same))
    progress.advance(result.checked % PROGRESS_STEP)
    docs, vanished = _documents(conn, missing + stale)
    found = {doc.listing_id for doc in docs}
    result.missing = sum(1 for item in missing if item[0] in found)
    result.stale = sum(1 for item in stale if item[0] in found) + len(compared)
    result.extra = len(extra) + len(vanished)
    if docs or compared or extra or vanished:
        engine.repair(conn, docs + compared, extra + vanished)
        logger.warning("search reconcile repaired drift: %s", result.as_dict())
    return result


def _differing(conn: Connection, engine: SearchEngine, documents: list[Document]) -> list[Document]:
    if not documents:
        return []
    ids = set(engine.differing(conn, documents))
    return [doc for doc in documents if doc.listing_id in ids]


def _documents(conn: Connection, items: list[Expected]) -> tuple[list[Document], list[str]]:
    """The documents of `items`, built by the deep check or loaded now; and the ids of those
    that no longer make one (gone or broken since)."""
    built = [doc for _, _, doc in items if doc is not None]
    loaded, vanished = load_documents(conn, [listing_id for listing_id, _, doc in items if doc is None])
    return built + loaded, vanished


def reconcile_with(writer: Engine, engine: SearchEngine, *, deep: bool = False) -> dict[str, int]:
    """`reconcile` in one transaction of `writer` (a synchronous writer engine)."""
    with writer.begin() as conn:
        return reconcile(conn, engine, deep=deep).as_dict()
