"""Check receipts: a compact JWS (RFC 7515) signed EdDSA/Ed25519 (RFC 8037) with the
registry's own key, which a bank keeps as proof that it consulted the list, and when.

Signed and verified with jwcrypto (latchset): it implements EdDSA under that name, as the
JWK Set at `/.well-known/jwks.json` publishes it (joserfc 1.8 warns on every use of
"EdDSA", deprecated by RFC 9864 in favour of "Ed25519", which stock verifiers do not know yet).

The payload names subjects by a salted SHA-256 only: `sha256(salt || kind 0x1f id 0x1f name)`
over the normalised values, with a fresh 16-byte salt per receipt in the payload. A bank
proves which borrower a receipt covers by showing the number; anyone else holding the
receipt must guess numbers one receipt at a time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from registry.identity.registry_key import RegistrySigner

ALGORITHM = "EdDSA"
RECEIPT_TYPE = "check-receipt"
# The JOSE header `typ` (RFC 7515 §4.1.9): tells a receipt from the registry's other JWSs.
HEADER_TYPE = "registry-check-receipt+jws"
SALT_BYTES = 16


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_decode(text: str) -> bytes:
    """Strict: the standard decoder skips characters outside the alphabet, which would let
    two different receipts decode alike."""
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def subject_digest(salt: bytes, kind: str, identifier: str, name: str | None) -> str:
    material = "\x1f".join((kind, identifier, name or "")).encode()
    return b64url(hashlib.sha256(salt + material).digest())


@dataclass
class ReceiptSigner:
    """Signs with the registry's active key; keeps one jwcrypto key object per key id."""

    signer: RegistrySigner
    _keys: dict[str, jwk.JWK] = field(default_factory=dict)

    def _key(self, kid: str, *, private: bool) -> jwk.JWK | None:
        cache_key = kid if private else "pub:" + kid
        key = self._keys.get(cache_key)
        if key is None:
            secret = self.signer.keys.get(kid)
            if secret is None:
                return None
            key = jwk.JWK.from_pyca(secret if private else secret.public_key())
            self._keys[cache_key] = key
        return key

    def sign(self, claims: dict[str, Any]) -> str:
        kid = self.signer.key_id
        key = self._key(kid, private=True)
        assert key is not None  # the active key is always held
        # jwcrypto's inner JWSCore: `JWS()` deep-copies its header registry on every
        # construction, which measured ~400 µs a receipt, more than the check itself.
        header = json.dumps({"alg": ALGORITHM, "kid": kid, "typ": HEADER_TYPE})
        signed = jws.JWSCore(ALGORITHM, key, header, msgspec.json.encode(claims)).sign()
        return f"{signed['protected']}.{signed['payload'].decode()}.{signed['signature']}"

    def verify(self, receipt: str) -> Verdict:
        """Genuine or not, and why. Never raises on bad input."""
        parts = receipt.strip().split(".")
        if len(parts) != 3 or not all(parts):
            return Verdict(False, "malformed", "a compact JWS is three base64url parts joined by dots")
        try:
            header = json.loads(b64url_decode(parts[0]))
            signature = b64url_decode(parts[2])
            b64url_decode(parts[1])
        # RecursionError: a header nested too deep to parse is malformed too, not a server error.
        except (ValueError, binascii.Error, RecursionError):
            return Verdict(False, "malformed", "a part is not base64url, or the header is not JSON")
        if not isinstance(header, dict):
            return Verdict(False, "malformed", "the JOSE header is not a JSON object")
        if header.get("alg") != ALGORITHM:
            return Verdict(False, "unsupported_algorithm", f"receipts are signed {ALGORITHM}")
        kid = header.get("kid")
        key = self._key(kid, private=False) if isinstance(kid, str) else None
        if key is None:
            return Verdict(False, "unknown_kid", "no registry key has this id (see /.well-known/jwks.json)")
        if len(signature) != 64:
            return Verdict(False, "bad_signature", "an Ed25519 signature is 64 bytes")
        token = jws.JWS()
        try:
            token.deserialize(receipt.strip())
            token.verify(key, alg=ALGORITHM)
        except JWException:
            return Verdict(
                False, "altered", "the signature does not match the header and payload: altered or forged"
            )
        try:
            claims = json.loads(token.payload)
        except ValueError:
            claims = None
        if not isinstance(claims, dict) or claims.get("typ") != RECEIPT_TYPE:
            return Verdict(False, "not_a_receipt", "signed by the registry, but not a check receipt")
        return Verdict(True, "genuine", "signed by the registry and unaltered", kid, claims)


@dataclass(frozen=True)
class Verdict:
    genuine: bool
    reason: str
    detail: str
    key_id: str | None = None
    claims: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"genuine": self.genuine, "reason": self.reason, "detail": self.detail}
        if self.genuine:
            body["key_id"] = self.key_id
            body["claims"] = self.claims
        return body
