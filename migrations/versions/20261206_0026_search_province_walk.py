"""PostgreSQL: an index of search documents by province, newest first

Revision ID: 0026
Revises: 0022
Create Date: 2026-12-06 00:00:00

A broad text with a province (a surname such as 王 with 北京) is answered past the count
limit by walking documents newest first until the page is full (search.embedded). Walking
the primary key, the province (bits of the id) could only be tested after each row was
read: every province's rows were read to find one province's. This index holds the
province bits before the id, so the walk reads that province's rows only, in page order,
and stops at the page's end. SQLite answers a text from FTS5's rowids and needs none. The
name starts with `search_fts`, the prefix of the dialect-specific search objects that the
drift check leaves to the migrations (migrations/env.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The very expression of search.embedded's province filter, or the planner cannot use it.
PROVINCE_OF_ID = "((id >> 6) & 127)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX search_fts_province_walk ON search_docs ({PROVINCE_OF_ID}, id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX search_fts_province_walk")
