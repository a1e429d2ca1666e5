"""The registry's own Ed25519 signing keys: what the registry signs (pushes, receipts,
export manifests, log checkpoints) is verified against these, published as a JWK Set.

Several keys may be known; one is active. Retired keys stay in the JWK Set so that a
receipt or export signed years ago still verifies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.identity.signing import b64url
from registry.settings import Settings


def registry_key_id(public_key: bytes) -> str:
    """Derived from the key itself, so the same key always has the same id."""
    return "rk_" + hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class RegistrySigner:
    keys: dict[str, Ed25519PrivateKey]
    active_key_id: str

    @property
    def key_id(self) -> str:
        return self.active_key_id

    def sign(self, message: bytes) -> bytes:
        return self.keys[self.active_key_id].sign(message)

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        private = self.keys.get(key_id)
        return None if private is None else private.public_key()

    def verify(self, key_id: str, signature: bytes, message: bytes) -> bool:
        public = self.public_key(key_id)
        if public is None:
            return False
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def jwks(self) -> dict[str, Any]:
        """RFC 8037 OKP keys, active key first."""
        ordered = [self.active_key_id, *sorted(k for k in self.keys if k != self.active_key_id)]
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url(self.keys[kid].public_key().public_bytes_raw()),
                    "kid": kid,
                    "alg": "EdDSA",
                    "use": "sig",
                }
                for kid in ordered
            ]
        }


def _signer(raw_keys: list[bytes], active: bytes) -> RegistrySigner:
    keys = {}
    active_id = ""
    for raw in raw_keys:
        private = Ed25519PrivateKey.from_private_bytes(raw)
        kid = registry_key_id(private.public_key().public_bytes_raw())
        keys[kid] = private
        if raw == active:
            active_id = kid
    return RegistrySigner(keys, active_id)


def load_registry_signer(settings: Settings) -> RegistrySigner:
    """From REGISTRY_SIGNING_KEYS (comma-separated base64 raw private keys, the first one
    active) when set; otherwise from (or newly into) the signing key file of the embedded set-up.
    """
    if settings.keys.signing_keys:
        raws = [
            base64.b64decode(part.strip()) for part in settings.keys.signing_keys.split(",") if part.strip()
        ]
        return _signer(raws, raws[0])
    path = settings.keys.signing_key_file
    if not path.exists():
        save_signing_keys(path, [Ed25519PrivateKey.generate().private_bytes_raw()])
    stored = json.loads(path.read_text())
    raws = [base64.b64decode(value) for value in stored["keys"]]
    return _signer(raws, raws[0])


def save_signing_keys(path: Path, raw_keys: list[bytes]) -> None:
    """The first key is the active one. Written 0600 and atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": [base64.b64encode(raw).decode() for raw in raw_keys]}, handle, indent=2)
    os.replace(tmp, path)


def rotate_signing_key(path: Path) -> str:
    """A new active key; the old ones stay for verification. Returns the new key id."""
    stored = json.loads(path.read_text()) if path.exists() else {"keys": []}
    fresh = Ed25519PrivateKey.generate().private_bytes_raw()
    save_signing_keys(path, [fresh, *(base64.b64decode(v) for v in stored["keys"])])
    return registry_key_id(Ed25519PrivateKey.from_private_bytes(fresh).public_key().public_bytes_raw())
