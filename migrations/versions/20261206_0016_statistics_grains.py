"""Statistics grains: a year grain at every family, and "not special" at the province's special grains

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 00:00:00

No table or column changes: the statistics reader now keeps, in `statistics_counts`, rows at
a year grain (`py`, `cy`, `qy`, `sy`, `period_start` the 1st of January) and, at the
province's special grains (`q…`), the listings that are no special subject under
`special_subject` '' (see publishing/statistics/models.py). This migration derives them
from the rows already kept, in the same transaction, so that the figures stay exact
without a rebuild: the "not special" rows are the province rows less the special ones, the
year rows the sums of the month rows. Downgrading deletes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
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
KEY = "grain, period_start, area, debtor_kind, special_subject, province_code"


def upgrade() -> None:
    columns = ", ".join(COUNT_COLUMNS)
    # Not special, at the province's special grains: every listing less the special ones. A
    # count is a sum over listings, so where no listing that is no special subject was listed
    # or removed, the difference is zero throughout, and no row is written.
    differences = ", ".join(f"p.{c} - COALESCE(q.{c}, 0)" for c in COUNT_COLUMNS)
    specials = ", ".join(f"SUM({c}) AS {c}" for c in COUNT_COLUMNS)
    op.execute(
        f"INSERT INTO statistics_counts ({KEY}, {columns}) "
        f"SELECT 'q' || substr(p.grain, 2, 1), p.period_start, p.area, p.debtor_kind, '', "
        f"p.province_code, {differences} "
        "FROM statistics_counts p LEFT JOIN ("
        f"SELECT grain, period_start, area, debtor_kind, {specials} FROM statistics_counts "
        "WHERE grain IN ('qd', 'qm', 'qt') GROUP BY grain, period_start, area, debtor_kind"
        ") q ON q.grain = 'q' || substr(p.grain, 2, 1) AND q.period_start = p.period_start "
        "AND q.area = p.area AND q.debtor_kind = p.debtor_kind "
        "WHERE p.grain IN ('pd', 'pm', 'pt') "
        "AND (p.listed <> COALESCE(q.listed, 0) OR p.removed <> COALESCE(q.removed, 0))"
    )
    # Years: the sums of their months, at every family.
    if op.get_bind().dialect.name == "postgresql":
        year = "CAST(date_trunc('year', period_start) AS DATE)"
    else:
        year = "date(period_start, 'start of year')"
    sums = ", ".join(f"SUM({c})" for c in COUNT_COLUMNS)
    op.execute(
        f"INSERT INTO statistics_counts ({KEY}, {columns}) "
        f"SELECT substr(grain, 1, 1) || 'y', {year}, area, debtor_kind, special_subject, "
        f"MAX(province_code), {sums} "
        "FROM statistics_counts WHERE grain IN ('pm', 'cm', 'qm', 'sm') "
        f"GROUP BY substr(grain, 1, 1), {year}, area, debtor_kind, special_subject"
    )


def downgrade() -> None:
    op.execute("DELETE FROM statistics_counts WHERE grain IN ('py', 'cy', 'qy', 'sy')")
    op.execute("DELETE FROM statistics_counts WHERE grain IN ('qd', 'qm', 'qt') AND special_subject = ''")
