"""How a court signs: Ed25519 over the RFC 8785 canonical JSON, base64url without padding.

`sign_envelope` plays the court's part for the demo, the benchmark and the tests; the
registry itself only verifies (`verify_signature`), with libsodium: about twice as fast as
OpenSSL's Ed25519 here, and strict where OpenSSL is lenient (docs/court-contract.md,
"Which signatures verify"): it refuses a small-order or non-canonical public key, a
small-order R and an S of L or more. A court's key is checked at registration
(`weak_public_key`), so a key that libsodium would refuse is never registered.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519, crypto_sign_open
from nacl.exceptions import BadSignatureError

from registry.identity.canonical import canonical_json

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_FIELD_PRIME = 2**255 - 19
_Y_MASK = (1 << 255) - 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_envelope(
    name: str, body: dict[str, Any], private_key: Ed25519PrivateKey, key_id: str
) -> dict[str, Any]:
    """`name` is "listing" or "removal"."""
    return {
        name: body,
        "signature": {"key_id": key_id, "value": b64url(private_key.sign(canonical_json(body)))},
    }


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is a valid Ed25519 signature of `message` under `public_key`, by
    libsodium's rule (a signature of the wrong length is simply invalid)."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


def weak_public_key(public_key: bytes) -> str | None:
    """Why `public_key` cannot be a court's key, or None: it must be 32 bytes, encode its
    point canonically, and lie in the prime-order subgroup (not small or mixed order). A key
    from any Ed25519 implementation's key generation passes; one that fails would make
    forgeries possible (a small-order key verifies a signature for any message under
    OpenSSL's rule) or none of its signatures verify under libsodium's."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        return "an Ed25519 public key is 32 bytes"
    if int.from_bytes(public_key, "little") & _Y_MASK >= _FIELD_PRIME:
        return "the public key is not a canonical encoding of a curve point"
    try:
        # libsodium refuses to convert a point off the curve, of small order or outside the
        # prime-order subgroup.
        crypto_sign_ed25519_pk_to_curve25519(public_key)
    except RuntimeError:
        return "the public key is not a point of Ed25519's prime-order subgroup"
    return None


def public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def private_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes_raw()
