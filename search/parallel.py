"""The documents of a full reindex, built with one process per core.

Building a document (the public entry and its JSON, name bigrams, pinyin runs) costs about
140 µs here, so at a million listings building is most of a reindex. Consecutive ranges of
listing ids are built by a process pool, each worker reading its range itself, while the
caller writes the rows in order, exactly as the in-process loop would have.

Each worker reads from its own snapshot, taken after the caller's. Whatever changed after
the caller read the log head is replayed by the indexer from that head (it loads current
rows and is idempotent), so a document built from a later snapshot is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, func, select

from registry.listings.models import Listing
from registry.readerpool import in_order, worker_reader
from search.documents import Document, all_active_documents, document_columns, documents_of

# Below this many listings the pool's start (a second or two) costs more than it saves.
PARALLEL_LISTINGS = 100_000
RANGE_LISTINGS = 10_000

# What an engine stores for a document: `row_of(document, sqlite)`. A module-level function,
# so that worker processes receive it by name.
RowOf = Callable[[Document, bool], dict[str, Any]]


def _rows_between(after: str, upto: str, sqlite: bool, row_of: RowOf) -> list[dict[str, Any]]:
    with worker_reader().connect() as conn:
        rows = conn.execute(
            document_columns()
            .where(Listing.status == "active", Listing.id > after, Listing.id <= upto)
            .order_by(Listing.id)
        ).all()
    return [row_of(doc, sqlite) for doc in documents_of(rows)]


def _ranges(conn: Connection, size: int) -> list[tuple[str, str]]:
    """(after, upto] listing-id ranges of `size` listings each, active or not: the ids come
    from the primary key's index alone, without reading a row."""
    ids = conn.execute(select(Listing.id).order_by(Listing.id)).scalars().all()
    bounds = ["", *ids[size - 1 :: size]]
    if ids and bounds[-1] != ids[-1]:
        bounds.append(ids[-1])
    return list(pairwise(bounds))


def document_rows(
    conn: Connection,
    workers: int,
    row_of: RowOf,
    *,
    min_listings: int = PARALLEL_LISTINGS,
    range_listings: int = RANGE_LISTINGS,
) -> Iterator[list[dict[str, Any]]]:
    """`row_of` every active listing's document, in listing-id order, in chunks."""
    sqlite = conn.dialect.name == "sqlite"
    listings = conn.execute(select(func.count()).select_from(Listing)).scalar_one()
    if workers < 2 or listings < min_listings:
        for chunk in all_active_documents(conn):
            yield [row_of(doc, sqlite) for doc in chunk]
        return
    tasks = [(after, upto, sqlite, row_of) for after, upto in _ranges(conn, range_listings)]
    url = conn.engine.url.render_as_string(hide_password=False)
    with closing(in_order(_rows_between, tasks, url, workers)) as chunks:
        yield from chunks
