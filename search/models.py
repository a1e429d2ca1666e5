"""The embedded index's own table. It lives in the registry database but belongs to search.

One row per active listing: the filter and facet columns, the index terms, and the encoded
public entry (so that a hit needs no join). The terms are a `tsvector` with a GIN index on
PostgreSQL; on SQLite they are plain text that an FTS5 table (`search_fts`, external
content over this table, created by the migration) indexes.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Integer, LargeBinary, String, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base

# The SQLite-only FTS5 table (and its shadow tables) and the PostgreSQL-only GIN indexes
# are created by migration 0003 and are invisible to the models; their names start with
# `search_fts`, which `migrations/env.py` leaves out of the drift check.
TermsType = TSVECTOR().with_variant(Text(), "sqlite")


class SearchDoc(Base):
    __tablename__ = "search_docs"

    # INTEGER on SQLite makes it the rowid, which the FTS5 table points at.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(32), unique=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    province_code: Mapped[str | None] = mapped_column(String(2))
    court_code: Mapped[str] = mapped_column(String(16))
    # Bit i set = GROUNDS[i]: a listing has one to six grounds, and facets count them.
    ground_mask: Mapped[int] = mapped_column(Integer)
    published_on: Mapped[date] = mapped_column(Date)
    terms: Mapped[str] = mapped_column(TermsType)
    pinyin: Mapped[str] = mapped_column(TermsType)
    # msgspec JSON of the PublicEntry (age left empty); last, so filters read small records.
    entry: Mapped[bytes] = mapped_column(LargeBinary)
