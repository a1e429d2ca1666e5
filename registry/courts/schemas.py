"""What anyone reads about courts: their names and public signing keys."""

from __future__ import annotations

import msgspec


class CourtKeyRead(msgspec.Struct, kw_only=True):
    key_id: str
    alg: str
    public_key: str  # raw Ed25519 public key, base64url
    valid_from: str
    valid_until: str | None
    revoked_at: str | None


class CourtRead(msgspec.Struct, kw_only=True):
    code: str
    name: str
    province_code: str | None
    keys: list[CourtKeyRead]
    # The court one level up, where reconsiderations go (SPC Provisions Art. 12).
    superior_code: str | None = None


class CourtList(msgspec.Struct):
    courts: list[CourtRead]
