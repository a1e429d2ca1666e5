"""Corrections (SPC Provisions Art. 9, 11, 12): applications, court decisions, attachments.

What the applicant wrote (name, contact, statement) and every attachment are encrypted at
rest (`registry.identity.crypto`, one purpose per column); the listing is found by id or
case number plus the blind index of the identifier, which is never stored here.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime

_OPEN = "status IN ('under_review', 'under_reconsideration') OR carried_out_at IS NULL"


class Correction(Base):
    """One application (origin `application`, Art. 11) or one wrongful listing the court
    found itself (origin `court`, Art. 9), with its deadlines as the registry computed them."""

    __tablename__ = "corrections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), index=True)
    court_code: Mapped[str] = mapped_column(ForeignKey("courts.code"))
    origin: Mapped[str] = mapped_column(String(16))
    ground: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    # SHA-256 of the secret tracking code (256 bits of randomness: a fast hash is enough).
    tracking_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # SHA-256 of the applicant's idempotency key with what the application says: a resend
    # of it is answered with this application (and a new tracking code), not refused.
    request_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # AES-GCM of {"name", "contact", "statement", "applicant_role"}.
    application_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    filed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    filed_on: Mapped[date] = mapped_column(Date)
    review_due_on: Mapped[date | None] = mapped_column(Date)
    # Art. 12: the applicant may ask for reconsideration until this day after a dismissal.
    reconsideration_until: Mapped[date | None] = mapped_column(Date)
    reconsideration_court: Mapped[str | None] = mapped_column(ForeignKey("courts.code"))
    reconsideration_requested_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reconsideration_due_on: Mapped[date | None] = mapped_column(Date)
    reconsideration_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Art. 9/11: once upheld, the listing is corrected within three working days.
    correction_due_on: Mapped[date | None] = mapped_column(Date)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    carried_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    carried_out_on_time: Mapped[bool | None] = mapped_column(Boolean)
    # The listing's version when the correction was decided: a later version carries it out.
    decided_version: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        # What the overdue lists and the court's queue look for: the open ones.
        Index(
            "ix_corrections_open",
            "court_code",
            "status",
            sqlite_where=text(_OPEN),
            postgresql_where=text(_OPEN),
        ),
    )


class CorrectionDecision(Base):
    """A court's signed decision on a correction: the exact signed bytes (encrypted: the
    reasons may name people) and the Ed25519 signature, as for listings."""

    __tablename__ = "correction_decisions"

    correction_id: Mapped[str] = mapped_column(ForeignKey("corrections.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), primary_key=True)
    court_code: Mapped[str] = mapped_column(ForeignKey("courts.code"))
    outcome: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    decided_on: Mapped[date] = mapped_column(Date)
    content_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[str] = mapped_column(ForeignKey("court_keys.key_id"))
    on_time: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CorrectionAttachment(Base):
    """A file the applicant sent: encrypted, read by the deciding courts and admins only."""

    __tablename__ = "correction_attachments"

    correction_id: Mapped[str] = mapped_column(ForeignKey("corrections.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    name_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    content_cipher: Mapped[bytes] = mapped_column(LargeBinary)
