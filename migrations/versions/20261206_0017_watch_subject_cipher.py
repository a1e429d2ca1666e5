"""Watched subjects keep their identifier encrypted, so a blind-index key can be rotated

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 00:00:00

`watch_subjects.subject_cipher`: the blind index's input, AES-GCM under the data keys
(purpose `watch_subject.index_input`). Filled for subjects added from now on; rows from
before stay without it (their identifier was never kept), are still matched, and are
reported by `registry keys rotate --blind-index` as impossible to recompute.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("watch_subjects") as batch:
        batch.add_column(sa.Column("subject_cipher", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch_subjects") as batch:
        batch.drop_column("subject_cipher")
