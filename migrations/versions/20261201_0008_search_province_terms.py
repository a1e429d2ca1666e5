"""PostgreSQL: the province as a term of each search document

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 14:00:00

On PostgreSQL a document's `terms` tsvector also holds its province as the term `~pNN`
(search.embedded.province_term), so that a text with a province filter is intersected in the
GIN index instead of fetching every heap row that matches the text. No column changes: the
term is added to the existing documents. SQLite (FTS5 reads the province off the rowid) is
left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The term as of this revision, written out: a migration must not follow later code.
PROVINCE_TERM = "'~p' || province_code"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "UPDATE search_docs SET terms = terms || "  # noqa: S608 - fixed text
        f"CAST(quote_literal({PROVINCE_TERM}) AS tsvector) WHERE province_code IS NOT NULL"
    )
    # A million new GIN entries wait in the pending list otherwise, and every query scans it.
    op.execute("SELECT gin_clean_pending_list('search_fts_terms_gin')")
    op.execute("ANALYZE search_docs")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"UPDATE search_docs SET terms = ts_delete(terms, {PROVINCE_TERM}) "  # noqa: S608 - fixed text
        "WHERE province_code IS NOT NULL"
    )
