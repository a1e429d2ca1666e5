"""bank checks: query log, daily usage, watchlists

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-27 18:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from registry.timeutil import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "check_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("checked_at", UtcDateTime(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("subject_index", sa.Integer(), nullable=False),
        sa.Column("subject_blind", sa.LargeBinary(length=32), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("listings", sa.Integer(), nullable=False),
        sa.Column("name_mismatch", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_log")),
    )
    op.create_index("ix_check_log_checked_at", "check_log", ["checked_at"])
    op.create_index("ix_check_log_client_id_checked_at", "check_log", ["client_id", "checked_at"])
    op.create_table(
        "check_usage",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("subjects", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "day", name=op.f("pk_check_usage")),
    )
    op.create_table(
        "watch_registrations",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_watch_registrations")),
    )
    op.create_table(
        "watch_subjects",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("subject_blind", sa.LargeBinary(length=32), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "subject_blind", name=op.f("pk_watch_subjects")),
    )
    op.create_index("ix_watch_subjects_subject_blind", "watch_subjects", ["subject_blind"])
    op.create_table(
        "watch_changes",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("client_id", "seq", name=op.f("pk_watch_changes")),
    )
    op.create_index(
        "ix_watch_changes_pending",
        "watch_changes",
        ["client_id", "seq"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_watch_changes_pending", table_name="watch_changes")
    op.drop_table("watch_changes")
    op.drop_index("ix_watch_subjects_subject_blind", table_name="watch_subjects")
    op.drop_table("watch_subjects")
    op.drop_table("watch_registrations")
    op.drop_table("check_usage")
    op.drop_index("ix_check_log_client_id_checked_at", table_name="check_log")
    op.drop_index("ix_check_log_checked_at", table_name="check_log")
    op.drop_table("check_log")
