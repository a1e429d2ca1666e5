"""Statistics and special subjects: listings.special_subject, statistics_facts, statistics_counts

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 00:00:00

A listing may name its debtor as a special subject (Opinion Art. 2, 4): the category is a
column, so that the personnel-oversight agency profile selects by it (partial index); the
employer stays in `details`. The statistics reader keeps, per listing, what it counted
(`statistics_facts`) and the counts at four grains (`statistics_counts`, see
publishing/statistics/models.py). Both start empty: the reader's cursor starts at 0 and
builds them from the whole log on its first run.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration does not follow the code of the day.
COUNT_COLUMNS = (
    "listed",
    "removed",
    "removed_on_time",
    "removed_late",
    "ground_able_but_refuses",
    "ground_obstructs_enforcement",
    "ground_evades_enforcement",
    "ground_breaches_property_reporting",
    "ground_breaches_consumption_restriction",
    "ground_breaches_settlement",
    "reason_performed",
    "reason_settlement_performed",
    "reason_creditor_request",
    "reason_no_property_found",
    "reason_enforcement_suspended",
    "reason_not_enforced",
    "reason_enforcement_terminated",
    "reason_wrongly_listed",
    "reason_term_expired",
)


def upgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.add_column(sa.Column("special_subject", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_listings_special_subject",
        "listings",
        ["special_subject", "id"],
        sqlite_where=sa.text("special_subject IS NOT NULL"),
        postgresql_where=sa.text("special_subject IS NOT NULL"),
    )
    op.create_table(
        "statistics_facts",
        sa.Column("listing_id", sa.String(length=32), nullable=False),
        sa.Column("court_code", sa.String(length=16), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        sa.Column("debtor_kind", sa.String(length=16), nullable=False),
        sa.Column("special_subject", sa.String(length=32), nullable=False),
        sa.Column("listed_on", sa.Date(), nullable=False),
        sa.Column("grounds", sa.String(length=200), nullable=False),
        sa.Column("removed_on", sa.Date(), nullable=True),
        sa.Column("removal_reason", sa.String(length=32), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["listing_id"], ["listings.id"], name=op.f("fk_statistics_facts_listing_id_listings")
        ),
        sa.PrimaryKeyConstraint("listing_id", name=op.f("pk_statistics_facts")),
    )
    op.create_table(
        "statistics_counts",
        sa.Column("grain", sa.String(length=2), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("debtor_kind", sa.String(length=16), nullable=False),
        sa.Column("special_subject", sa.String(length=32), nullable=False),
        sa.Column("province_code", sa.String(length=2), nullable=False),
        *(sa.Column(name, sa.BigInteger(), server_default=sa.text("0"), nullable=False) for name in COUNT_COLUMNS),
        sa.PrimaryKeyConstraint(
            "grain", "period_start", "area", "debtor_kind", "special_subject", name=op.f("pk_statistics_counts")
        ),
        # SQLite keeps the rows in key order: a period's rows are read in one sweep.
        sqlite_with_rowid=False,
    )
    op.create_index("ix_statistics_counts_grain_area", "statistics_counts", ["grain", "area", "period_start"])
    op.create_index(
        "ix_statistics_counts_grain_province_code",
        "statistics_counts",
        ["grain", "province_code", "period_start"],
    )


def downgrade() -> None:
    op.drop_index("ix_statistics_counts_grain_province_code", table_name="statistics_counts")
    op.drop_index("ix_statistics_counts_grain_area", table_name="statistics_counts")
    op.drop_table("statistics_counts")
    op.drop_table("statistics_facts")
    op.drop_index("ix_listings_special_subject", table_name="listings")
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("special_subject")
