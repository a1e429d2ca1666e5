"""search document ids carry their facet key

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 23:30:00

A document's id becomes serial << 14 | organisation bit << 13 | province code << 6 | grounds
(search.embedded.FACET_BITS), so that the embedded index counts and filters on FTS5's rowids
alone. No column changes: the ids of the existing documents are renumbered in place, in
their order (the newest still highest), and SQLite's FTS5 index is rebuilt over them.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The layout as of this revision, written out: a migration must not follow later code.
FACET_KEY = (
    "(CASE WHEN kind = 'organization' THEN 8192 ELSE 0 END)"
    " + coalesce(CAST(province_code AS INTEGER), 0) * 64 + ground_mask"
)


def upgrade() -> None:
    # Through negative ids first: no new id can collide with an old one still in place.
    op.execute("UPDATE search_docs SET id = -id")
    op.execute(f"UPDATE search_docs SET id = (-id) * 16384 + {FACET_KEY}")  # noqa: S608 - fixed text
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")


def downgrade() -> None:
    # Ids that carry a facet key are still unique and ordered, which is all 0006 asks of them.
    pass
