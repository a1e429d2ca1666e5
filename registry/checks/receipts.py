"""Check receipts: a compact JWS (RFC 7515) signed EdDSA/Ed25519 (RFC 8037) with the
registry's own key, which a bank keeps as proof that it consulted the list, and when.

Signed by `RegistrySigner` for the receipt domain (registry/identity/registry_key.py: the
signing input must be a JWS whose header `typ` is `registry-check-receipt+jws`, so no other
registry signature can pass for a receipt, nor a receipt's for anything else); verified with
jwcrypto (latchset): it implements EdDSA under that name, as the JWK Set at
`/.well-known/jwks.json` publishes it (joserfc 1.8 warns on every use of "EdDSA", deprecated
by RFC 9864 in favour of "Ed25519", which stock verifiers do not know yet).

The payload names each subject by a commitment only: HMAC-SHA256 keyed with a fresh
256-bit nonce per subject, over `kind 0x1f identifier 0x1f name` (normalised). The nonces
go to the bank beside the receipt (in the answer's results), never inside it: whoever holds
only the receipt cannot test a guessed number against it (nothing short of the nonce
narrows it), while the bank proves which borrower a receipt covers by showing the subject
and its nonce (`POST /v1/checks/verify`).

Receipts of version 1 (before 2026-12) carried one salt inside the payload and a plain
`sha256(salt || material)`; they still verify, and a subject alone is matched against them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgspec
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from registry.identity.registry_key import RECEIPT_HEADER_TYPE, Domain, RegistrySigner

ALGORITHM = "EdDSA"
RECEIPT_TYPE = "check-receipt"
# The JOSE header `typ` (RFC 7515 §4.1.9): tells a receipt from the registry's other JWSs.
HEADER_TYPE = RECEIPT_HEADER_TYPE
NONCE_BYTES = 32
RECEIPT_VERSION = 2


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_decode(text: str) -> bytes:
    """Strict: the standard decoder skips characters outside the alphabet, which would let
    two different receipts decode alike."""
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _material(kind: str, identifier: str, name: str | None) -> bytes:
    return "\x1f".join((kind, identifier, name or "")).encode()


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def subject_commitment(nonce: bytes, kind: str, identifier: str, name: str | None) -> str:
    """Version 2: base64url HMAC-SHA256(key = the subject's nonce, kind 0x1f id 0x1f name)."""
    return b64url(hmac.new(nonce, _material(kind, identifier, name), hashlib.sha256).digest())


def legacy_subject_digest(salt: bytes, kind: str, identifier: str, name: str | None) -> str:
    """Version 1 (the salt travelled inside the receipt): only to match old receipts."""
    return b64url(hashlib.sha256(salt + _material(kind, identifier, name)).digest())


def covered_index(
    claims: dict[str, Any], kind: str, identifier: str, name: str | None, nonce: bytes | None
) -> int | None:
    """The index of the receipt's subject that is this subject (and nonce), or None."""
    subjects = claims.get("subjects")
    if not isinstance(subjects, list):
        return None
    if claims.get("v") == 1:
        try:
            salt = b64url_decode(str(claims.get("salt", "")))
        except (ValueError, binascii.Error):
            return None
        want, field_name = legacy_subject_digest(salt, kind, identifier, name), "sha256"
    elif nonce is None:
        return None
    else:
        want, field_name = subject_commitment(nonce, kind, identifier, name), "commitment"
    for entry in subjects:
        if isinstance(entry, dict) and hmac.compare_digest(str(entry.get(field_name, "")), want):
            index = entry.get("i")
            return index if isinstance(index, int) else None
    return None


@dataclass
class ReceiptSigner:
    """Signs with the registry's active key; keeps one jwcrypto key object per key id."""

    signer: RegistrySigner
    _keys: dict[str, jwk.JWK] = field(default_factory=dict)
    # The encoded JOSE header, per key id: the same bytes for every receipt a key signs.
    _headers: dict[str, str] = field(default_factory=dict)

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
        """A compact JWS (RFC 7515 section 7.1), signed for the receipt domain."""
        kid = self.signer.key_id
        header = self._headers.get(kid)
        if header is None:
            header = b64url(json.dumps({"alg": ALGORITHM, "kid": kid, "typ": HEADER_TYPE}).encode())
            self._headers[kid] = header
        signing_input = f"{header}.{b64url(msgspec.json.encode(claims))}"
        return f"{signing_input}.{b64url(self.signer.sign(Domain.RECEIPT, signing_input.encode()))}"

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
        if header.get("typ") != HEADER_TYPE:
            # The receipt domain's mark: a JWS without it was never signed as a receipt.
            return Verdict(False, "not_a_receipt", f"a receipt's JOSE header has typ {HEADER_TYPE}")
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
