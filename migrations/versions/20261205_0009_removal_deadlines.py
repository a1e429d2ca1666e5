"""Removals keep their statutory deadline: triggered_on, deadline_on, on time or late

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 22:00:00

SPC Art. 10 deletes a listing within three working days of the day the deletion condition
arose. A removal now carries that day (`triggered_on`), the deadline the registry computed on
China's working-day calendar (`deadline_on`, `deadline_provisional` when a day counted lies in
a year the calendar data does not cover) and whether the removal was recorded by then
(`on_time`). Existing removals did not state the day, so theirs stay NULL (unknown), except
term expiries, the registry's own act on the day after the term: those are on time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("removals") as batch:
        batch.add_column(sa.Column("triggered_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("deadline_on", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("deadline_provisional", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch.add_column(sa.Column("on_time", sa.Boolean(), nullable=True))
    op.execute("UPDATE removals SET on_time = true WHERE reason = 'term_expired'")
    op.create_index(
        "ix_removals_late",
        "removals",
        ["created_at"],
        sqlite_where=sa.text("on_time = 0"),
        postgresql_where=sa.text("NOT on_time"),
    )


def downgrade() -> None:
    op.drop_index("ix_removals_late", table_name="removals")
    with op.batch_alter_table("removals") as batch:
        batch.drop_column("on_time")
        batch.drop_column("deadline_provisional")
        batch.drop_column("deadline_on")
        batch.drop_column("triggered_on")
