"""The agency push's removal lane

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-06 00:00:00

A removal (or a lift) of a listing a push subscription's agency already holds is sent ahead
of the subscription's backlog (docs/sync.md, "The removal lane"). `sync_lane_events` holds
the events acknowledged that way and still above the cursor, so that the main lane passes
over them; `sync_subscriptions.lane_delivered_total` / `lane_last_delivered_at` report the
lane in the status and metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.timeutil import UtcDateTime

revision: str = "0024"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lane_delivered_total", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("lane_last_delivered_at", UtcDateTime(), nullable=True))
    op.create_table(
        "sync_lane_events",
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("listing_id", sa.String(length=32), nullable=False),
        sa.Column("acked_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["sync_subscriptions.id"],
            name=op.f("fk_sync_lane_events_subscription_id_sync_subscriptions"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", "seq", name=op.f("pk_sync_lane_events")),
    )


def downgrade() -> None:
    op.drop_table("sync_lane_events")
    with op.batch_alter_table("sync_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("lane_last_delivered_at")
        batch_op.drop_column("lane_delivered_total")
