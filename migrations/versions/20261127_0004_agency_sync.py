"""agency sync

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-27 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.timeutil import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("delivered_head", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("failures_total", sa.BigInteger(), nullable=False),
        sa.Column("delivered_total", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_delivered_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_delivered_at", UtcDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_sync_subscriptions_client_id_api_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_subscriptions")),
    )
    with op.batch_alter_table("sync_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_subscriptions_client_id"), ["client_id"], unique=False)

    op.create_table(
        "assistance_notices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=32), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=False),
        sa.Column("listing_version", sa.Integer(), nullable=False),
        sa.Column("court_code", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("acknowledged_at", UtcDateTime(), nullable=True),
        sa.Column("objection", sa.Text(), nullable=True),
        sa.Column("objected_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["api_clients.id"], name=op.f("fk_assistance_notices_client_id_api_clients")
        ),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_assistance_notices_listing_id_listings")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["sync_subscriptions.id"],
            name=op.f("fk_assistance_notices_subscription_id_sync_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistance_notices")),
        sa.UniqueConstraint(
            "subscription_id",
            "listing_id",
            "kind",
            "seq",
            name=op.f("uq_assistance_notices_subscription_id_listing_id_kind_seq"),
        ),
    )
    with op.batch_alter_table("assistance_notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assistance_notices_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_assistance_notices_court_code"), ["court_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_assistance_notices_due_at"), ["due_at"], unique=False)

    op.create_table(
        "sync_states",
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=False),
        sa.Column("listing_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("acked_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["sync_subscriptions.id"],
            name=op.f("fk_sync_states_subscription_id_sync_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", "listing_id", name=op.f("pk_sync_states")),
    )
    with op.batch_alter_table("sync_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_states_subscription_acked_at", ["subscription_id", "acked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sync_states", schema=None) as batch_op:
        batch_op.drop_index("ix_sync_states_subscription_acked_at")

    op.drop_table("sync_states")
    with op.batch_alter_table("assistance_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assistance_notices_due_at"))
        batch_op.drop_index(batch_op.f("ix_assistance_notices_court_code"))
        batch_op.drop_index(batch_op.f("ix_assistance_notices_client_id"))

    op.drop_table("assistance_notices")
    with op.batch_alter_table("sync_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sync_subscriptions_client_id"))

    op.drop_table("sync_subscriptions")
