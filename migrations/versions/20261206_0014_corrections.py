"""Corrections and review (SPC Art. 9, 11, 12): applications, signed decisions, attachments;
each court's superior court

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 00:00:00

`courts.superior_code` names the court one level up, where a dismissed correction goes for
reconsideration. `corrections` holds each application (or wrongful listing a court found
itself) with the deadlines the registry computed on China's calendar; the applicant's words
and files are encrypted (`application_cipher`, `correction_attachments.content_cipher`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status IN ('under_review', 'under_reconsideration') OR carried_out_at IS NULL"


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("courts") as batch:
        batch.add_column(sa.Column("superior_code", sa.String(16), nullable=True))
        batch.create_foreign_key("fk_courts_superior_code_courts", "courts", ["superior_code"], ["code"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("listing_id", sa.String(32), nullable=False),
        sa.Column("court_code", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("ground", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("tracking_hash", sa.LargeBinary(32), nullable=True),
        sa.Column("application_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("filed_at", _utc(), nullable=False),
        sa.Column("filed_on", sa.Date(), nullable=False),
        sa.Column("review_due_on", sa.Date(), nullable=True),
        sa.Column("reconsideration_until", sa.Date(), nullable=True),
        sa.Column("reconsideration_court", sa.String(16), nullable=True),
        sa.Column("reconsideration_requested_at", _utc(), nullable=True),
        sa.Column("reconsideration_due_on", sa.Date(), nullable=True),
        sa.Column("reconsideration_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("correction_due_on", sa.Date(), nullable=True),
        sa.Column("deadline_provisional", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("carried_out_at", _utc(), nullable=True),
        sa.Column("carried_out_on_time", sa.Boolean(), nullable=True),
        sa.Column("decided_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["listing_id"], ["listings.id"], name="fk_corrections_listing_id_listings"),
        sa.ForeignKeyConstraint(["court_code"], ["courts.code"], name="fk_corrections_court_code_courts"),
        sa.ForeignKeyConstraint(
            ["reconsideration_court"], ["courts.code"], name="fk_corrections_reconsideration_court_courts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_corrections"),
    )
    op.create_index("ix_corrections_listing_id", "corrections", ["listing_id"])
    op.create_index(
        "ix_corrections_open",
        "corrections",
        ["court_code", "status"],
        sqlite_where=sa.text(_OPEN),
        postgresql_where=sa.text(_OPEN),
    )
    op.create_table(
        "correction_decisions",
        sa.Column("correction_id", sa.String(32), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("court_code", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("content_sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("signed_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["correction_id"], ["corrections.id"], name="fk_correction_decisions_correction_id_corrections"
        ),
        sa.ForeignKeyConstraint(
            ["court_code"], ["courts.code"], name="fk_correction_decisions_court_code_courts"
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["court_keys.key_id"], name="fk_correction_decisions_key_id_court_keys"
        ),
        sa.PrimaryKeyConstraint("correction_id", "stage", name="pk_correction_decisions"),
    )
    op.create_table(
        "correction_attachments",
        sa.Column("correction_id", sa.String(32), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("name_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("content_cipher", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["correction_id"], ["corrections.id"], name="fk_correction_attachments_correction_id_corrections"
        ),
        sa.PrimaryKeyConstraint("correction_id", "number", name="pk_correction_attachments"),
    )


def downgrade() -> None:
    op.drop_table("correction_attachments")
    op.drop_table("correction_decisions")
    op.drop_index("ix_corrections_open", table_name="corrections")
    op.drop_index("ix_corrections_listing_id", table_name="corrections")
    op.drop_table("corrections")
    with op.batch_alter_table("courts") as batch:
        batch.drop_constraint("fk_courts_superior_code_courts", type_="foreignkey")
        batch.drop_column("superior_code")
