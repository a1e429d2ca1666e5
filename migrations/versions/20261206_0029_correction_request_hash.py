"""Applications remember the hash of the applicant's idempotency key

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 00:00:00

`corrections.request_hash`: an applicant whose answer was lost resends the same application
with the same `idempotency_key` and is given its number (and a new tracking code) instead of
`409 correction_pending`. Existing rows stay NULL: they were filed without a key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("request_hash", sa.LargeBinary(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("request_hash")
