"""An agency's assistance notices read a page at a time

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 00:00:00

`GET /v1/notices` returned an agency's oldest 1,000 notices and no more: it now pages by
`after` (a notice id) in issue order, read from an index on (client_id, seq, id), which
replaces the one on client_id alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assistance_notices") as batch_op:
        batch_op.create_index("ix_assistance_notices_client_seq", ["client_id", "seq", "id"], unique=False)
        batch_op.drop_index("ix_assistance_notices_client_id")


def downgrade() -> None:
    with op.batch_alter_table("assistance_notices") as batch_op:
        batch_op.create_index("ix_assistance_notices_client_id", ["client_id"], unique=False)
        batch_op.drop_index("ix_assistance_notices_client_seq")
