"""The feeds' own table: each listing's latest public event, kept by a reader of the log."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class Publication(Base):
    """One row per listing: its latest publication, amendment, removal or expiry.

    The row holds what the filters need and the removal's reason and date; the entry
    itself is built from the listing row at request time through the public allow-list,
    so this table adds no copy of personal data. A removal replaces the listing's earlier
    rows: from then on feeds carry only the removal notice.
    """

    __tablename__ = "publications"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    listing_id: Mapped[str] = mapped_column(String(32), unique=True)
    event: Mapped[str] = mapped_column(String(16))  # published, amended, removed, expired
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    province_code: Mapped[str | None] = mapped_column(String(2))
    court_code: Mapped[str] = mapped_column(String(16))
    debtor_kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    effective_on: Mapped[date | None] = mapped_column(Date)

    # Newest first under one filter: each index ends with seq so the page is an index range.
    __table_args__ = (
        Index("ix_publications_province_code_seq", "province_code", "seq"),
        Index("ix_publications_court_code_seq", "court_code", "seq"),
        Index("ix_publications_debtor_kind_seq", "debtor_kind", "seq"),
    )
