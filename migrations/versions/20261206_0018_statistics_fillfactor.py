"""Statistics counts keep free room on their pages (PostgreSQL): fillfactor 70

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 00:00:00

The statistics reader updates `statistics_counts` rows in place, changing counts only, never
an indexed column. With a third of each page free, PostgreSQL writes the new version of a
row on the same page (a HOT update), so the rows of one period stay where they were first
written, together, instead of spreading one to a page; a year's statistics then read a few
hundred pages rather than thousands (docs/benchmarks.md, issue 17). The setting applies to
pages written from now on; `registry statistics compact` rewrites the existing ones.
SQLite has no such setting (the table is WITHOUT ROWID, kept in key order): a no-op there.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE statistics_counts SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE statistics_counts RESET (fillfactor)")
