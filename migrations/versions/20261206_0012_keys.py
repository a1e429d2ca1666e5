"""The keys the stored data needs (registry_keys), so that a service missing one refuses to start

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 00:00:00

Backfilled from the data: every data-key id a ciphertext names (the id is in each
ciphertext's header: format byte, id length, id) and every signing-key id of a signed
checkpoint. The blind-index key leaves no id in the data: the service records it at its
next start, after checking it against a stored index (registry/identity/keystore.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CIPHERTEXTS = [
    ("listings", "debtor_id_cipher"),
    ("listing_versions", "signed_cipher"),
    ("removals", "signed_cipher"),
]


def _key_id_sql(dialect: str, column: str) -> str:
    if dialect == "postgresql":
        return f"convert_from(substring({column} from 3 for get_byte({column}, 1)), 'UTF8')"
    # SQLite: the length byte read as a one-character string (ids are shorter than 128).
    return f"CAST(substr({column}, 3, unicode(CAST(substr({column}, 2, 1) AS TEXT))) AS TEXT)"


def upgrade() -> None:
    table = op.create_table(
        "registry_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_registry_keys")),
    )
    conn = op.get_bind()
    found: dict[str, str] = {}
    for name, column in _CIPHERTEXTS:
        sql = f"SELECT DISTINCT {_key_id_sql(conn.dialect.name, column)} FROM {name} WHERE {column} IS NOT NULL"
        for (key_id,) in conn.execute(sa.text(sql)):
            found[str(key_id)] = "data"
    for (key_id,) in conn.execute(sa.text("SELECT DISTINCT key_id FROM translog_checkpoints")):
        found[str(key_id)] = "signing"
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as registry.timeutil.UtcDateTime stores it there
    if found:
        op.bulk_insert(
            table,
            [{"key_id": kid, "kind": kind, "created_at": now, "retired_at": None} for kid, kind in found.items()],
        )


def downgrade() -> None:
    op.drop_table("registry_keys")
