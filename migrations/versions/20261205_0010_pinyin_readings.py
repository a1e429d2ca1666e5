"""Embedded search: persons' pinyin terms are rebuilt with every reading of a given name

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 22:00:00

A given-name character with several readings is now indexed under each (陈长伟 is found by
chenchangwei as well as chenzhangwei; search.text.spellings). The terms are made by code
(pypinyin), which a migration must not follow, so this revision only marks every person's
document as stale (version 0, which no listing has): the search reconcile job rewrites them
with the code of the day within an hour of start, and until then they are found as before.
`registry search reindex` rebuilds them at once. No column changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE search_docs SET version = 0 WHERE kind = 'person'")


def downgrade() -> None:
    # Nothing to undo: the reconcile rewrites stale documents with whatever code runs.
    pass
