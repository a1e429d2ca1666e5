"""PostgreSQL: each single character of a search document's name, in its province

Revision ID: 0026
Revises: 0024
Create Date: 2026-12-06 00:00:00

A single-character query (a surname such as 王) must name a province; on PostgreSQL it was
answered by intersecting two long GIN posting lists, the character's and the province's
(`~pNN`, revision 0008), whose decoding grew with the list. Each document's `terms` now
also holds every single character of its name qualified by its province (`~p11王`,
search.embedded.province_character_term), so that such a query reads one short posting
list. No column changes: the terms are added to the existing documents. SQLite (FTS5 reads
the province off the rowid) is left as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The terms as of this revision, written out: a migration must not follow later code. A
# name's single characters are its unpositioned one-character lexemes; the province's
# own term is `~pNN` (four characters), so a qualified character is `~pNN` and one more.
QUALIFIED = (
    "ARRAY(SELECT '~p' || province_code || lexeme FROM unnest(tsvector_to_array(terms)) AS lexeme "
    "WHERE length(lexeme) = 1)"
)
QUALIFIED_PRESENT = (
    "ARRAY(SELECT lexeme FROM unnest(tsvector_to_array(terms)) AS lexeme "
    "WHERE lexeme LIKE '~p%' AND length(lexeme) = 5)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"UPDATE search_docs SET terms = terms || array_to_tsvector({QUALIFIED}) "  # noqa: S608 - fixed text
        "WHERE province_code IS NOT NULL"
    )
    # The new GIN entries wait in the pending list otherwise, and every query scans it.
    op.execute("SELECT gin_clean_pending_list('search_fts_terms_gin')")
    op.execute("ANALYZE search_docs")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"UPDATE search_docs SET terms = ts_delete(terms, {QUALIFIED_PRESENT}) "  # noqa: S608 - fixed text
        "WHERE province_code IS NOT NULL"
    )
