"""Bank checks (SPC 2010 Opinion Art. 14): the query log, daily usage, watchlists.

No table here holds a plain identifier: subjects are kept as the registry's HMAC blind
index (`registry.identity.crypto.BlindIndex`), the same value `listings.debtor_id_blind`
holds, so an admin can find who checked a person without anyone storing the number. A
watched subject also keeps its identifier encrypted under the data keys, so that its
index can be recomputed under a new blind-index key (`registry keys rotate --blind-index`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime

# What `watch_subjects.subject_cipher` is bound to (AES-GCM associated data).
PURPOSE_WATCH_SUBJECT = b"watch_subject.index_input"

# INTEGER on SQLite makes the key the rowid (one B-tree less per append).
_ROW_ID = BigInteger().with_variant(Integer, "sqlite")


class CheckLogEntry(Base):
    """One subject of one check: who asked, why, when, about whom (hashed), what they got."""

    __tablename__ = "check_log"

    id: Mapped[int] = mapped_column(_ROW_ID, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    purpose: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(Text)
    subject_index: Mapped[int] = mapped_column(Integer)
    subject_blind: Mapped[bytes] = mapped_column(LargeBinary(32))
    # listed | not_listed | invalid
    result: Mapped[str] = mapped_column(String(16))
    listings: Mapped[int] = mapped_column(Integer)
    name_mismatch: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # The admin export (one bank, a time range) and the retention purge (time only).
        Index("ix_check_log_client_id_checked_at", "client_id", "checked_at"),
        Index("ix_check_log_checked_at", "checked_at"),
    )


class CheckUsage(Base):
    """Subjects checked per bank per (China) day: the daily quota, exact across processes."""

    __tablename__ = "check_usage"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    subjects: Mapped[int] = mapped_column(BigInteger)


class WatchRegistration(Base):
    """A bank's watchlist settings: where a delivery job may push its changes, and how its
    pushes fare (failures in a row back off exponentially; a worker holds the bank through
    the lease while it pushes)."""

    __tablename__ = "watch_registrations"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    failures_total: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WatchSubject(Base):
    """One watched borrower of one bank: the blind index, the bank's own reference, and the
    index's input (`index_input`) encrypted under the data keys, so that the index can be
    recomputed under a new blind-index key. Rows added before revision 0017 have no
    ciphertext: they are matched, but a rotation cannot recompute them (it reports them)."""

    __tablename__ = "watch_subjects"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_blind: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    subject_cipher: Mapped[bytes | None] = mapped_column(LargeBinary())

    # The log reader asks "which banks watch these subjects?".
    __table_args__ = (Index("ix_watch_subjects_subject_blind", "subject_blind"),)


class WatchChange(Base):
    """A change to a watched subject's listings, for one bank.

    Keyed by (bank, event seq): one event concerns one listing and so one subject, and the
    single log reader writes them in log order under its cursor lock, so a bank that reads
    `seq > after` never skips or repeats one. `payload` is the complete record a bank
    receives (from `GET /v1/watchlist/changes` or, later, a push), so a delivery job needs
    no joins. `delivered_at` is for that job.
    """

    __tablename__ = "watch_changes"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    # What the push job looks for: undelivered changes, per bank, in order.
    __table_args__ = (
        Index(
            "ix_watch_changes_pending",
            "client_id",
            "seq",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )
