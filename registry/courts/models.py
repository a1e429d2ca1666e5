from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class Court(Base):
    __tablename__ = "courts"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    province_code: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # The court one level up (basic -> intermediate -> high -> SPC): where a dismissed
    # correction goes for reconsideration (SPC Provisions Art. 12). None for the SPC, or unknown.
    superior_code: Mapped[str | None] = mapped_column(ForeignKey("courts.code"))


class CourtKey(Base):
    """An Ed25519 public key a court signs listings and removals with."""

    __tablename__ = "court_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    court_code: Mapped[str] = mapped_column(ForeignKey("courts.code"), index=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
