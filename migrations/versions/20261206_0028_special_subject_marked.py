"""Listings remember the version whose amendment added the special-subject mark

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-06 00:00:00

`listings.special_subject_marked_in`: a court may mark a listed debtor as a special subject
(Opinion Art. 2, 4) by amendment; the personnel-oversight agencies are then asked to act
from that version, and a notice reader that runs late must know the listing was not marked
before it. Existing rows stay NULL, read as "marked since publication": no amendment before
this revision recorded when a mark was added.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("special_subject_marked_in", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("special_subject_marked_in")
