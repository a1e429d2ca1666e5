"""From registry rows to index documents, through the one public allow-list.

A document carries `public_entry(...)` encoded once (its age is the age at publication,
fixed, so no birth date is kept beside it), plus what the engines filter, facet and match
on. Nothing else from the listing row reaches the index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import Connection, select

from registry.listings.disclosure import PublicEntry, public_columns, public_entry
from registry.listings.models import Listing
from registry.listings.schemas import GROUNDS
from search.text import name_terms, pinyin_terms

logger = logging.getLogger("search.documents")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PublicEntry)
LOAD_CHUNK = 500


@dataclass(frozen=True)
class Document:
    listing_id: str
    version: int
    kind: str
    province_code: str | None
    court_code: str
    grounds: tuple[str, ...]
    published_on: date
    terms: tuple[str, ...]
    pinyin: tuple[str, ...]
    entry: bytes

    @property
    def ground_mask(self) -> int:
        return ground_mask(self.grounds)


def ground_mask(grounds: Iterable[str]) -> int:
    mask = 0
    for ground in grounds:
        mask |= 1 << GROUNDS.index(ground)
    return mask


def grounds_of(mask: int) -> list[str]:
    return [ground for i, ground in enumerate(GROUNDS) if mask & (1 << i)]


def document_of(row: Any) -> Document:
    """`row`: the columns of `public_columns()` plus `version`."""
    entry = public_entry(row)
    person = row.debtor_kind == "person"
    return Document(
        listing_id=row.id,
        version=row.version,
        kind=row.debtor_kind,
        province_code=row.province_code,
        court_code=row.court_code,
        grounds=tuple(entry.grounds),
        published_on=entry.published_on,
        terms=tuple(name_terms(row.debtor_name)),
        pinyin=tuple(pinyin_terms(row.debtor_name)) if person else (),
        entry=_encoder.encode(entry),
    )


def buildable(row: Any) -> Document | None:
    """The document, or None (logged, by listing id only) for a row that cannot make one.

    Rows were validated at ingest, so this is a bug or a hand edit; left out of search (and
    out of the index if it was there), it must not stop the indexer at that event forever.
    """
    try:
        return document_of(row)
    except (KeyError, TypeError, ValueError, AttributeError, msgspec.MsgspecError) as exc:
        logger.error("listing %s cannot be indexed (%s); left out of search", row.id, type(exc).__name__)
        return None


def hit(entry: bytes) -> PublicEntry:
    return _decoder.decode(entry)


def document_columns() -> Any:
    return public_columns().add_columns(Listing.version)


def load_documents(conn: Connection, listing_ids: Sequence[str]) -> tuple[list[Document], list[str]]:
    """(documents of the active ones, ids of the others: removed, expired, unknown or broken)."""
    found: dict[str, Document] = {}
    for start in range(0, len(listing_ids), LOAD_CHUNK):
        chunk = listing_ids[start : start + LOAD_CHUNK]
        for row in conn.execute(document_columns().where(Listing.id.in_(chunk))):
            if row.status == "active" and (doc := buildable(row)) is not None:
                found[row.id] = doc
    # In the order asked (the log's): the index's newest-first order follows publication.
    active = [found[listing_id] for listing_id in listing_ids if listing_id in found]
    return active, [listing_id for listing_id in listing_ids if listing_id not in found]


def listing_states(conn: Connection, listing_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """(version, status) of each of these listings that exists: whether a document built
    earlier is still the listing's."""
    states: dict[str, tuple[int, str]] = {}
    for start in range(0, len(listing_ids), LOAD_CHUNK):
        chunk = listing_ids[start : start + LOAD_CHUNK]
        rows = conn.execute(select(Listing.id, Listing.version, Listing.status).where(Listing.id.in_(chunk)))
        states.update((row.id, (row.version, row.status)) for row in rows)
    return states


def documents_of(rows: Iterable[Any]) -> list[Document]:
    """The documents of these rows (of `document_columns()`), leaving out any that cannot make one."""
    return [doc for row in rows if (doc := buildable(row)) is not None]


def all_active_documents(conn: Connection, chunk: int = 5000) -> Iterator[list[Document]]:
    """Every active listing, oldest publication first, in chunks (keyset paging on the id)."""
    after = ""
    while True:
        rows = conn.execute(
            document_columns()
            .where(Listing.status == "active", Listing.id > after)
            .order_by(Listing.id)
            .limit(chunk)
        ).all()
        if not rows:
            return
        yield documents_of(rows)
        after = rows[-1].id
