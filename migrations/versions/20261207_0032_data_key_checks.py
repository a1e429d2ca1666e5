"""A check value for each recorded data key

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 00:00:00

Data keys are named by the operator (REGISTRY_DATA_KEYS `id:key`): the start-up check
compared ids only, so other bytes under a recorded id were taken, and what was encrypted
under them could never be read with the real key. `registry_keys.check_value` holds an HMAC
under each data key (`registry.identity.keystore.data_key_check`), set at the next start
once a stored ciphertext under that key has decrypted (or none is stored under it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("registry_keys") as batch_op:
        batch_op.add_column(sa.Column("check_value", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registry_keys") as batch_op:
        batch_op.drop_column("check_value")
