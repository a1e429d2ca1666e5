"""Singleton jobs remember when they last started

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 00:00:00

`job_runs`: two workers each schedule every singleton job; the election lock kept their runs
apart but not from following each other a second later. The elected worker skips a run that
another started less than half an interval ago (`service.scheduler.run_alone`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.timeutil import UtcDateTime

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
