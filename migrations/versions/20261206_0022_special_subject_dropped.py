"""Listings remember the version whose amendment dropped the special-subject mark

Revision ID: 0022
Revises: 0018
Create Date: 2026-12-06 00:00:00

`listings.special_subject_dropped_in`: when a court's amendment removes a debtor's
special-subject mark (Opinion Art. 2, 4), the personnel-oversight profile must tell its
agencies that the listing has left their scope; the listing row alone no longer says it had
been in it. Existing rows stay NULL: no amendment before this revision recorded the drop.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("special_subject_dropped_in", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("special_subject_dropped_in")
