"""The registry's public keys as a JWK Set (RFC 7517, OKP keys per RFC 8037)."""

from __future__ import annotations

import msgspec


class JWK(msgspec.Struct, kw_only=True):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JWKSet(msgspec.Struct):
    keys: list[JWK]
