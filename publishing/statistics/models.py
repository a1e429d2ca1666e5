"""The statistics' own tables, kept by their reader of the event log (`publishing.statistics.reader`).

`statistics_facts` holds, per listing, what the counts hold of it (its court, kind, special
subject, listing day, grounds, removal day, reason, timeliness): when a listing changes, the
reader takes its old contribution out of the counts and puts the new one in, so the counts
always equal a count over the listings as they stand, whatever order events arrive in.

`statistics_counts` holds the counts at several grains, so that a request reads a few
thousand rows, never the list: per province and day (`pd`), month (`pm`), year (`py`,
`period_start` the 1st of January) or all time (`pt`), per court and day (`cd`), month
(`cm`), year (`cy`) or all time (`ct`, `period_start` TOTAL_START), each with
`special_subject` ''. Special subjects are counted again at their own grains (`q…` by
province, `s…` by court) under their category, so the common figures do not multiply their
rows by the categories; the province ones (`q…`) also count the listings that are not a
special subject, under `special_subject` '', so that a breakdown by special subject reads
its "not special" row directly (at the `q…` grains "any special subject" is therefore
`special_subject <> ''`). `area` is the province code (`p…`, `q…`) or the court code (`c…`,
`s…`); `province_code` is '' where a court has none. The all-time rows give the active count
at a day from the few rows after it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Column, Date, ForeignKey, Index, String, Table, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.listings.schemas import GROUNDS, REMOVAL_REASONS, TERM_EXPIRED

REASONS = (*REMOVAL_REASONS, TERM_EXPIRED)
GROUND_COLUMNS = tuple(f"ground_{ground}" for ground in GROUNDS)
REASON_COLUMNS = tuple(f"reason_{reason}" for reason in REASONS)
# Every count column, in one order: the reader's deltas and the queries' sums use it.
COUNT_COLUMNS = ("listed", "removed", "removed_on_time", "removed_late", *GROUND_COLUMNS, *REASON_COLUMNS)
GRAINS = tuple(family + size for family in "pcqs" for size in "dmyt")
TOTAL_START = date(1990, 1, 1)  # the all-time rows' period_start; no listing is dated earlier


class StatisticsFact(Base):
    __tablename__ = "statistics_facts"

    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), primary_key=True)
    court_code: Mapped[str] = mapped_column(String(16))
    province_code: Mapped[str] = mapped_column(String(2))
    debtor_kind: Mapped[str] = mapped_column(String(16))
    special_subject: Mapped[str] = mapped_column(String(32))  # '' for none
    listed_on: Mapped[date] = mapped_column(Date)
    grounds: Mapped[str] = mapped_column(String(200))  # comma-separated, in GROUNDS order
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(String(32))
    on_time: Mapped[bool | None] = mapped_column(Boolean)


STATISTICS_COUNTS = Table(
    "statistics_counts",
    Base.metadata,
    # Day before area: a period is one range of the key, which SQLite keeps in key order
    # (WITHOUT ROWID), so a year of every court's months is read in one sweep; one court's
    # or one province's rows come through the (grain, area, period_start) index.
    Column("grain", String(2), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("area", String(16), primary_key=True),
    Column("debtor_kind", String(16), primary_key=True),
    Column("special_subject", String(32), primary_key=True),
    Column("province_code", String(2), nullable=False),
    *(Column(name, BigInteger, nullable=False, server_default=text("0")) for name in COUNT_COLUMNS),
    Index("ix_statistics_counts_grain_area", "grain", "area", "period_start"),
    Index("ix_statistics_counts_grain_province_code", "grain", "province_code", "period_start"),
    sqlite_with_rowid=False,
    # Room on each page for the reader's updates to stay on it (HOT: no indexed column
    # changes), so that a period's rows stay together (migration 0018).
    postgresql_with={"fillfactor": 70},
)
