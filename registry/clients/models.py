from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class ApiClient(Base):
    """A caller of the API. Only a SHA-256 of its key is kept (keys are 256-bit random)."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    court_code: Mapped[str | None] = mapped_column(ForeignKey("courts.code"))
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
