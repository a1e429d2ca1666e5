"""How a court signs: Ed25519 over the RFC 8785 canonical JSON, base64url without padding.

Used by the demo, the benchmark and the tests to play the court's part; the registry
itself only verifies.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.identity.canonical import canonical_json


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


def public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes_raw()


def private_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes_raw()
