"""Encryption at rest (AES-256-GCM under a key id) and the HMAC blind index."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.settings import Settings

_FORMAT = 1
_NONCE_BYTES = 12


class DataKeyError(RuntimeError):
    """A ciphertext names a key the registry does not hold, or fails authentication."""


class DataKeyring:
    """Encrypts under the active key; decrypts under whichever key a ciphertext names.

    Ciphertext layout: format byte, key-id length, key id, 96-bit nonce, AES-GCM output.
    The purpose (for example b"listing.debtor_id") is bound as associated data, so a
    ciphertext cannot be moved to another column and still decrypt.
    """

    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise DataKeyError(f"active data key {active_key_id!r} is not among the configured keys")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self._raw = dict(keys)
        self.active_key_id = active_key_id
        self._header = bytes([_FORMAT, len(active_key_id)]) + active_key_id.encode()

    def raw_keys(self) -> dict[str, bytes]:
        return dict(self._raw)

    def encrypt(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return self._header + nonce + self._aead[self.active_key_id].encrypt(nonce, plaintext, purpose)

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        if len(blob) < 2 or blob[0] != _FORMAT:
            raise DataKeyError("unknown ciphertext format")
        return blob[2 : 2 + blob[1]].decode()

    def decrypt(self, blob: bytes, purpose: bytes) -> bytes:
        kid = self.key_id_of(blob)
        aead = self._aead.get(kid)
        if aead is None:
            raise DataKeyError(f"data key {kid!r} is not configured")
        start = 2 + blob[1]
        nonce = blob[start : start + _NONCE_BYTES]
        try:
            return aead.decrypt(nonce, blob[start + _NONCE_BYTES :], purpose)
        except Exception as exc:  # cryptography raises InvalidTag without a message
            raise DataKeyError(f"ciphertext under {kid!r} failed authentication") from exc


class BlindIndex:
    """HMAC-SHA256 of a normalised identifier: equality lookups without the plaintext."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, normalised_identifier: str) -> bytes:
        return hmac.new(self._key, normalised_identifier.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Secrets:
    keyring: DataKeyring
    blind_index: BlindIndex
    blind_index_key: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_key_id() -> str:
    return "dk-" + secrets.token_hex(4)


class SecretsSource:
    """The current secrets. A generated secrets file is re-read when it changes on disk, so
    that a running service follows `registry keys rotate` without a restart."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stamp: float | None = None
        self._secrets = load_secrets(settings)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> float | None:
        if self._settings.keys.data_keys:
            return None
        try:
            return self._settings.keys.secrets_file.stat().st_mtime
        except FileNotFoundError:
            return None

    def current(self) -> Secrets:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._secrets = load_secrets(self._settings)
            self._stamp = stamp
        return self._secrets


def load_secrets(settings: Settings) -> Secrets:
    """Keys from the environment when given; otherwise from (or newly into) the secrets file.

    The file exists so that the embedded demo works from a fresh clone; production passes
    REGISTRY_DATA_KEYS, REGISTRY_DATA_KEY_ID and REGISTRY_BLIND_INDEX_KEY.
    """
    if settings.keys.data_keys:
        keys = {}
        for part in settings.keys.data_keys.split(","):
            kid, _, value = part.strip().partition(":")
            keys[kid] = base64.b64decode(value)
        active = settings.keys.data_key_id or next(iter(keys))
        if not settings.keys.blind_index_key:
            raise DataKeyError("REGISTRY_BLIND_INDEX_KEY must be set along with REGISTRY_DATA_KEYS")
        blind_key = base64.b64decode(settings.keys.blind_index_key)
    else:
        keys, active, blind_key = SecretsFile(settings.keys.secrets_file).load()
    return Secrets(DataKeyring(keys, active), BlindIndex(blind_key), blind_key)


class SecretsFile:
    """The generated-keys file of the embedded set-up (mode 0600, never committed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> tuple[dict[str, bytes], str, bytes]:
        if not self.path.exists():
            kid = new_key_id()
            self.save({kid: AESGCM.generate_key(bit_length=256)}, kid, secrets.token_bytes(32))
        stored = json.loads(self.path.read_text())
        keys = {kid: base64.b64decode(value) for kid, value in stored["data_keys"].items()}
        return keys, str(stored["active_data_key_id"]), base64.b64decode(stored["blind_index_key"])

    def save(self, keys: dict[str, bytes], active_key_id: str, blind_index_key: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "data_keys": {kid: _b64(key) for kid, key in keys.items()},
            "active_data_key_id": active_key_id,
            "blind_index_key": _b64(blind_index_key),
        }
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle, indent=2)
        os.replace(tmp, self.path)
