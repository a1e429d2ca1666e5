"""Sync safety: where a subscription starts, its end on revocation, lost leases; watchlist
push back-off and leases

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 00:00:00

`sync_subscriptions.start_seq` is the first log position a subscription may read after:
its `from_seq` when created, lowered only by an admin's replay. Existing subscriptions start
at their acknowledged cursor (the agency already holds what lies below). `ended_at` is set
when the agency's client is revoked. `lease_lost_total` / `last_lease_lost_at` report a
worker that lost its lease mid-delivery. `watch_registrations` gains the retry state of its
pushes (attempts, next attempt, last error, failures) and a lease like subscriptions'.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.timeutil import UtcDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("start_seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("ended_at", UtcDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("lease_lost_total", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_lease_lost_at", UtcDateTime(), nullable=True))
    op.execute("UPDATE sync_subscriptions SET start_seq = cursor")
    with op.batch_alter_table("watch_registrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("failures_total", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_delivered_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("lease_until", UtcDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch_registrations", schema=None) as batch_op:
        for column in (
            "lease_until", "lease_owner", "last_delivered_at", "failures_total", "last_error",
            "next_attempt_at", "attempts",
        ):  # fmt: skip
            batch_op.drop_column(column)
    with op.batch_alter_table("sync_subscriptions", schema=None) as batch_op:
        for column in ("last_lease_lost_at", "lease_lost_total", "ended_at", "start_seq"):
            batch_op.drop_column(column)
