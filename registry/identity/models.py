"""Which keys the stored data needs: one row per key id the registry has used.

A row is written when a key is first used (generated for an empty database, or adopted
from the configuration) and marked retired when nothing stored depends on it any more
(`registry keys retire`). At start the service compares the ids here with the keys it
holds and refuses to run without one it needs: it never creates keys for data that
already exists (`registry/identity/keystore.py`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class RegistryKey(Base):
    __tablename__ = "registry_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # data (AES-GCM), blind_index (HMAC), signing (the registry's Ed25519)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Data keys: an HMAC under the key (registry.identity.keystore.data_key_check). Their ids
    # are names the operator chooses, so the id alone does not tell that the bytes are the
    # ones the data was encrypted under; None for keys recorded before the check was kept.
    check_value: Mapped[str | None] = mapped_column(String(64))
