from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class Listing(Base):
    """The current state of one listing. Its certified versions live in `listing_versions`.

    The debtor's identifier is stored three ways, each for one purpose: AES-GCM ciphertext
    (the registry and the listing court may read it), an HMAC blind index over the type and
    the number (exact lookup without decrypting), and the public form (persons: province and
    birth year only; organisations: the code in full).
    """

    __tablename__ = "listings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    court_code: Mapped[str] = mapped_column(ForeignKey("courts.code"))
    province_code: Mapped[str | None] = mapped_column(String(2))
    case_number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    debtor_kind: Mapped[str] = mapped_column(String(16))
    debtor_name: Mapped[str] = mapped_column(Text)
    # registry.identity.types.ID_TYPES: which document the identifier is (bound into the index).
    debtor_id_type: Mapped[str] = mapped_column(String(32), server_default=text("'resident_id'"))
    debtor_id_blind: Mapped[bytes] = mapped_column(LargeBinary(32))
    debtor_id_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    debtor_id_masked: Mapped[str] = mapped_column(String(32))
    debtor_sex: Mapped[str | None] = mapped_column(String(1))
    # Persons: the birth year only (the public age at publication needs no more); the full
    # birth date is in the encrypted identifier. No clear column, alone or with another,
    # rebuilds an identifier (issue 15): the mask shows the province and birth year only.
    debtor_birth_year: Mapped[int | None] = mapped_column(Integer)
    legal_representative: Mapped[str | None] = mapped_column(Text)
    grounds: Mapped[list[str]] = mapped_column(JSON)
    term_years: Mapped[int | None] = mapped_column(Integer)
    filed_on: Mapped[date] = mapped_column(Date)
    listed_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    # The publishable, identifier-free part of the current version (basis, obligations, ...).
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_seq: Mapped[int] = mapped_column(BigInteger)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    removed_on: Mapped[date | None] = mapped_column(Date)
    removal_reason: Mapped[str | None] = mapped_column(String(32))
    # Opinion Art. 2, 4: the special-subject category the court asserted (its employer is in
    # `details`); the personnel-oversight agency profile selects by it.
    special_subject: Mapped[str | None] = mapped_column(String(32))
    # The version whose amendment dropped that mark: the personnel-oversight profile tells its
    # agencies the listing has left their scope, which the unmarked row alone no longer says.
    special_subject_dropped_in: Mapped[int | None] = mapped_column(Integer)
    # The version whose amendment added the mark (None: marked since publication, or never):
    # the personnel-oversight agencies are told to act from that version, not from the first.
    special_subject_marked_in: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_listings_debtor_id_blind", "debtor_id_blind"),
        # Only what the expiry job looks for: active listings with a fixed term.
        Index(
            "ix_listings_active_expires_on",
            "expires_on",
            sqlite_where=text("status = 'active' AND expires_on IS NOT NULL"),
            postgresql_where=text("status = 'active' AND expires_on IS NOT NULL"),
        ),
        # Only the special subjects: the personnel-oversight profile's snapshot and drift.
        Index(
            "ix_listings_special_subject",
            "special_subject",
            "id",
            sqlite_where=text("special_subject IS NOT NULL"),
            postgresql_where=text("special_subject IS NOT NULL"),
        ),
    )


class ListingVersion(Base):
    """A court-certified version: the exact signed bytes (encrypted) and the signature."""

    __tablename__ = "listing_versions"

    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    court_code: Mapped[str] = mapped_column(String(16))
    submission_id: Mapped[str] = mapped_column(String(128))
    content_sha256: Mapped[bytes] = mapped_column(LargeBinary(32))
    signed_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    key_id: Mapped[str] = mapped_column(ForeignKey("court_keys.key_id"))
    submitted_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    # submission_id first: idempotency lookups ask `submission_id IN (...)` for a whole batch.
    __table_args__ = (UniqueConstraint("submission_id", "court_code"),)


class Removal(Base):
    """Why and when a listing left the public list. Signed unless the registry expired it."""

    __tablename__ = "removals"

    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    effective_on: Mapped[date] = mapped_column(Date)
    basis_document: Mapped[str | None] = mapped_column(Text)
    content_sha256: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    signed_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    key_id: Mapped[str | None] = mapped_column(ForeignKey("court_keys.key_id"))
    removed_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # SPC Art. 10: deletion within three working days of the day the condition arose. None on
    # removals recorded before the registry kept the deadline.
    triggered_on: Mapped[date | None] = mapped_column(Date)
    deadline_on: Mapped[date | None] = mapped_column(Date)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    on_time: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        # Only what the late-removal reports look for.
        Index(
            "ix_removals_late",
            "created_at",
            sqlite_where=text("on_time = 0"),
            postgresql_where=text("NOT on_time"),
        ),
    )
