"""The registry's own Ed25519 signing keys: what the registry signs (pushes, receipts,
export manifests, log checkpoints) is verified against these, published as a JWK Set.

Several keys may be known; one is active. Retired keys stay in the JWK Set so that a
receipt or export signed years ago still verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.identity.errors import KeyConfigError, KeysUnavailable
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


def _decode(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyConfigError(f"{what} is not valid base64") from exc
    if len(raw) != 32:
        raise KeyConfigError(f"{what} is not a raw 32-byte Ed25519 private key")
    return raw


def _read_signing_file(path: Path) -> list[bytes] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyConfigError(f"cannot read the signing key file {path}: {exc.strerror}") from exc
    try:
        values = json.loads(text)["keys"]
        raws = [_decode(value, f"a key of {path}") for value in values]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyConfigError(f"the signing key file {path} is not a signing key file: {exc!r}") from exc
    if not raws:
        raise KeyConfigError(f"the signing key file {path} holds no key")
    return raws


def load_signer_if_present(settings: Settings) -> RegistrySigner | None:
    """From REGISTRY_SIGNING_KEYS (comma-separated base64 raw private keys, the first one
    active) when set; otherwise from the signing key file, or None when it does not exist.
    Never creates a key (registry/identity/keystore.py does, for an empty database only)."""
    if settings.keys.signing_keys:
        parts = [part for part in settings.keys.signing_keys.split(",") if part.strip()]
        raws = [_decode(part, "REGISTRY_SIGNING_KEYS") for part in parts]
        if not raws:
            raise KeyConfigError("REGISTRY_SIGNING_KEYS holds no key")
        return _signer(raws, raws[0])
    raws_or_none = _read_signing_file(settings.keys.signing_key_file)
    return None if raws_or_none is None else _signer(raws_or_none, raws_or_none[0])


def load_registry_signer(settings: Settings) -> RegistrySigner:
    signer = load_signer_if_present(settings)
    if signer is None:
        raise KeysUnavailable(
            [], ["signing"], f"the signing key file {settings.keys.signing_key_file} does not exist"
        )
    return signer


def generate_signing_key_file(path: Path) -> bool:
    """A first signing key, only if the file does not exist yet; returns whether it was made."""
    if path.exists():
        return False
    return save_signing_keys(path, [Ed25519PrivateKey.generate().private_bytes_raw()], exclusive=True)


def save_signing_keys(path: Path, raw_keys: list[bytes], *, exclusive: bool = False) -> bool:
    """The first key is the active one. Written 0600 and atomically; with `exclusive`, only
    when no file is there yet (returns False then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"keys": [base64.b64encode(raw).decode() for raw in raw_keys]}, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    if not exclusive:
        os.replace(tmp, path)
        return True
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def rotate_signing_key(path: Path) -> str:
    """A new active key; the old ones stay for verification. Returns the new key id."""
    stored = _read_signing_file(path)
    if stored is None:
        raise KeysUnavailable([], ["signing"], f"the signing key file {path} does not exist")
    fresh = Ed25519PrivateKey.generate().private_bytes_raw()
    save_signing_keys(path, [fresh, *stored])
    return registry_key_id(Ed25519PrivateKey.from_private_bytes(fresh).public_key().public_bytes_raw())
