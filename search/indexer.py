"""Keeps the embedded index in step with the registry: follow the log, reconcile, rebuild.

The indexer reads the events above its cursor, loads the current rows of the listings they
name (events carry no personal data), writes the active ones and deletes the others, and
moves its cursor, all in one transaction: at-least-once, and idempotent because a document
already at its listing's version is left alone. The cursor row is locked first (FOR UPDATE
on PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE), so two workers never
index the same events at once, and a rebuild excludes the indexer while it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Column, Connection, Engine, MetaData, Table, delete, func, or_, select, text

from registry.bulk import bulk_insert
from registry.db import Database
from registry.eventlog.cursors import set_cursor
from registry.eventlog.models import ReaderCursor
from registry.eventlog.services import head, read_events
from registry.eventlog.types import LISTING_EVENTS
from registry.listings.models import Listing
from search.documents import Document, all_active_documents, load_documents
from search.embedded import (
    DOCS,
    FACET_KEY,
    apply_changes,
    clear_all,
    doc_row,
    insert_rows,
    next_serial,
    numbered,
    rebuild_fts,
    write_documents,
)
from search.models import SearchDoc
from search.parallel import document_rows

logger = logging.getLogger("search.indexer")

CURSOR = "search.embedded"
EVENTS_PER_STEP = 5000


def lock_cursor(conn: Connection, name: str) -> int:
    position = conn.execute(
        select(ReaderCursor.position).where(ReaderCursor.name == name).with_for_update()
    ).scalar()
    if position is None:
        set_cursor(conn, name, 0)
        return 0
    return int(position)


def changed_listings(events: Sequence[dict[str, Any]]) -> list[str]:
    """Distinct listing ids named by listing events, in first-seen order."""
    ids = (event["listing_id"] for event in events if event["type"] in LISTING_EVENTS)
    return list(dict.fromkeys(ids))


def index_step(conn: Connection, limit: int = EVENTS_PER_STEP) -> int:
    """Apply up to `limit` events in the caller's transaction; returns how many were read."""
    position = lock_cursor(conn, CURSOR)
    events = read_events(conn, position, limit)
    if not events:
        return 0
    active, gone = load_documents(conn, changed_listings(events))
    apply_changes(conn, active, gone)
    set_cursor(conn, CURSOR, events[-1]["seq"])
    return len(events)


async def follow_log(db: Database) -> int:
    """The scheduler job: index everything pending; returns the number of events read."""
    total = 0
    while True:
        async with db.writer.begin() as conn:
            read = await conn.run_sync(index_step)
        total += read
        if read < EVENTS_PER_STEP:
            return total


@dataclass
class Reconciliation:
    checked: int = 0
    missing: int = 0  # active listings without a document
    stale: int = 0  # documents that differ from what the listing gives now
    extra: int = 0  # documents of listings that are not active (or do not exist)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_COMPARED = ("version", "kind", "province_code", "court_code", "ground_mask", "published_on", "birth_date")


def _differs(stored: Any, expected: dict[str, Any]) -> bool:
    """`expected`: a `doc_row`, its terms as the database renders them (see `_rendered`)."""
    if any(getattr(stored, name) != expected[name] for name in _COMPARED):
        return True
    if stored.id & FACET_KEY != expected["id"]:
        return True
    if bytes(stored.entry) != expected["entry"]:
        return True
    return bool(stored.terms != expected["terms"] or stored.pinyin != expected["pinyin"])


_RENDERED = (
    "SELECT CAST(terms AS tsvector)::text, CAST(pinyin AS tsvector)::text "
    "FROM unnest(CAST(:terms AS text[]), CAST(:pinyin AS text[])) WITH ORDINALITY AS t(terms, pinyin, n) "
    "ORDER BY n"
)


def _rendered(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `doc_row` with their terms as the database gives them back: SQLite keeps our
    text; PostgreSQL renders a tsvector its own way (sorted, merged positions), so it is
    asked to render ours, 500 rows a statement."""
    if conn.dialect.name == "sqlite" or not rows:
        return rows
    columns = {"terms": [row["terms"] for row in rows], "pinyin": [row["pinyin"] for row in rows]}
    rendered = conn.execute(text(_RENDERED), columns).all()
    return [
        row | {"terms": terms, "pinyin": pinyin} for row, (terms, pinyin) in zip(rows, rendered, strict=True)
    ]


def _shallow_drift(conn: Connection) -> tuple[int, list[str], list[str], list[str]]:
    """(active listings, missing, stale, extra) by comparing ids, versions and the filter
    columns that come straight from the listing row: three joins, no document built."""
    active = Listing.status == "active"
    checked = conn.execute(select(func.count()).select_from(Listing).where(active)).scalar_one()
    missing = conn.execute(
        select(Listing.id)
        .outerjoin(SearchDoc, SearchDoc.listing_id == Listing.id)
        .where(active, SearchDoc.id.is_(None))
        .order_by(Listing.id)
    ).scalars()
    stale = conn.execute(
        select(SearchDoc.listing_id)
        .join(Listing, Listing.id == SearchDoc.listing_id)
        .where(
            active,
            or_(
                SearchDoc.version != Listing.version,
                SearchDoc.kind != Listing.debtor_kind,
                SearchDoc.court_code != Listing.court_code,
                SearchDoc.province_code.is_distinct_from(Listing.province_code),
            ),
        )
        .order_by(Listing.id)
    ).scalars()
    extra = conn.execute(
        select(SearchDoc.listing_id)
        .outerjoin(Listing, Listing.id == SearchDoc.listing_id)
        .where(or_(Listing.id.is_(None), Listing.status != "active"))
    ).scalars()
    return int(checked), list(missing), list(stale), list(extra)


def _deep_drift(conn: Connection, sqlite: bool) -> tuple[int, list[Document], list[Document], list[str]]:
    """Every document rebuilt from its listing and compared whole (entry and terms too)."""
    stored_ids = set(conn.execute(select(SearchDoc.listing_id)).scalars())
    checked = 0
    missing: list[Document] = []
    stale: list[Document] = []
    for chunk in all_active_documents(conn):
        checked += len(chunk)
        ids = [doc.listing_id for doc in chunk]
        present = {
            row.listing_id: row
            for start in range(0, len(ids), 500)
            for row in conn.execute(
                select(SearchDoc).where(SearchDoc.listing_id.in_(ids[start : start + 500]))
            )
        }
        expected = [
            row
            for start in range(0, len(chunk), 500)
            for row in _rendered(conn, [doc_row(doc, sqlite) for doc in chunk[start : start + 500]])
        ]
        for doc, row in zip(chunk, expected, strict=True):
            stored_ids.discard(doc.listing_id)
            stored = present.get(doc.listing_id)
            if stored is None:
                missing.append(doc)
            elif _differs(stored, row):
                stale.append(doc)
    return checked, missing, stale, sorted(stored_ids)


def reconcile(conn: Connection, *, deep: bool = False) -> Reconciliation:
    """Find and repair drift between the active listings and the documents, in one transaction.

    The default check compares ids, versions and filter columns in SQL (seconds at a
    million listings: the periodic job); `deep` rebuilds every document and compares it
    whole, which costs about a reindex. On SQLite, a repaired row may have been changed
    behind FTS5's back (that is how drift happens), so FTS5 cannot be told to forget its old
    terms: after any repair it is rebuilt from the documents.
    """
    lock_cursor(conn, CURSOR)
    sqlite = conn.dialect.name == "sqlite"
    if deep:
        checked, missing, stale, extra = _deep_drift(conn, sqlite)
    else:
        checked, missing_ids, stale_ids, extra = _shallow_drift(conn)
        docs, vanished = load_documents(conn, missing_ids + stale_ids)
        by_id = {doc.listing_id: doc for doc in docs}
        missing = [by_id[i] for i in missing_ids if i in by_id]
        stale = [by_id[i] for i in stale_ids if i in by_id]
        extra = extra + vanished
    result = Reconciliation(checked=checked, missing=len(missing), stale=len(stale), extra=len(extra))
    if missing or stale or extra:
        _repair(conn, missing + stale, extra, sqlite)
        logger.warning("search reconcile repaired drift: %s", result.as_dict())
    return result


def _repair(conn: Connection, docs: list[Document], extra: list[str], sqlite: bool) -> None:
    if sqlite:
        conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('delete-all')"))
        ids = extra + [doc.listing_id for doc in docs]
        for start in range(0, len(ids), 500):
            conn.execute(delete(SearchDoc).where(SearchDoc.listing_id.in_(ids[start : start + 500])))
        insert_rows(conn, [doc_row(doc, sqlite) for doc in docs], next_serial(conn))
        rebuild_fts(conn)
        return
    apply_changes(conn, [], extra)
    write_documents(conn, docs)


def reindex(conn: Connection, workers: int = 1) -> int:
    """Rebuild every document from the listings, in the caller's transaction; returns the count.

    Readers keep seeing the old documents until commit (SQLite WAL snapshots, PostgreSQL
    MVCC), so the public never meets an empty index. The cursor goes to the log head read
    at the start: events after it are replayed, harmlessly, on the next indexer run. With
    `workers` > 1 and a large list, documents are built by a process pool (search.parallel).
    """
    lock_cursor(conn, CURSOR)
    start, _ = head(conn)
    clear_all(conn)
    serial = 1
    for rows in document_rows(conn, workers):
        serial = insert_rows(conn, rows, serial)
    rebuild_fts(conn)
    set_cursor(conn, CURSOR, start)
    return serial - 1


# Our own table and column names: the only text spliced into the statements below.
_STAGE = "search_docs_build"
_STAGED_COLUMNS = ", ".join(column.name for column in DOCS.columns)


def staged_reindex(engine: Engine, workers: int = 1) -> tuple[int, float]:
    """SQLite: the rebuild without holding the database's write lock while documents are built.

    Documents are built (by `workers` processes at scale: search.parallel) into a TEMP table
    (SQLite's temp database: writing it takes no lock on the registry file), then one short
    write transaction swaps them in and rebuilds FTS5. Ingest waits only for the swap; the
    public sees the old index until it commits. The cursor goes to the log head read first,
    so what changed since is replayed by the next indexer run (for up to one interval, the
    snapshot is what shows).
    Returns (documents, seconds the write lock was held). `engine`: a reader engine (BEGIN
    DEFERRED), so that the snapshot's transaction takes no write lock.
    """
    stage = Table(_STAGE, MetaData(), *(Column(c.name, c.type) for c in DOCS.columns))
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_STAGE}")
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {_STAGE} AS SELECT {_STAGED_COLUMNS} FROM search_docs WHERE 0"  # noqa: S608
        )
        start, _ = head(conn)
        count = 0
        for rows in document_rows(conn, workers):
            bulk_insert(conn, stage, numbered(rows, count + 1))
            count += len(rows)
        conn.commit()
        locked = time.perf_counter()
        # The first statement writes, so the transaction waits for the write lock (busy
        # timeout) instead of failing to upgrade a read snapshot.
        clear_all(conn)
        conn.exec_driver_sql(
            f"INSERT INTO search_docs ({_STAGED_COLUMNS}) "  # noqa: S608
            f"SELECT {_STAGED_COLUMNS} FROM temp.{_STAGE} ORDER BY rowid"
        )
        rebuild_fts(conn)
        set_cursor(conn, CURSOR, start)
        conn.commit()
        held = time.perf_counter() - locked
        conn.exec_driver_sql(f"DROP TABLE temp.{_STAGE}")
        conn.commit()
    return count, held
