"""embedded public search index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMS = postgresql.TSVECTOR().with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "search_docs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=True),
        sa.Column("court_code", sa.String(length=16), nullable=False),
        sa.Column("ground_mask", sa.Integer(), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("terms", TERMS, nullable=False),
        sa.Column("pinyin", TERMS, nullable=False),
        sa.Column("entry", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_docs")),
        sa.UniqueConstraint("listing_id", name=op.f("uq_search_docs_listing_id")),
    )
    if op.get_bind().dialect.name == "sqlite":
        # External content over search_docs: the terms are stored once, FTS5 keeps the index.
        # unicode61 keeps CJK characters and digits as token characters; each stored term is
        # one token because terms are letters and digits only (search.text.search_form).
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5(terms, pinyin, content='search_docs', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 0', columnsize=0)"
        )
        # Facet counts and filters read these for every match; a narrow covering index keeps
        # them to a few pages instead of one wide row (with its entry) per match.
        op.execute(
            "CREATE INDEX search_fts_facets ON search_docs "
            "(id, province_code, ground_mask, kind, court_code, published_on)"
        )
    else:
        # A query scans a GIN index's whole pending list (fast update): keep it short (256 kB,
        # not the 4 MB default) so that incremental indexing cannot slow every query down.
        for column in ("terms", "pinyin"):
            op.execute(
                f"CREATE INDEX search_fts_{column}_gin ON search_docs USING gin ({column}) "
                "WITH (gin_pending_list_limit = 256)"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")
    op.drop_table("search_docs")
