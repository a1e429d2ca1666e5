"""The registry's own Ed25519 signing keys: what the registry signs (pushes, receipts,
export manifests, log checkpoints) is verified against these, published as a JWK Set.

Several keys may be known; one is active. Retired keys stay in the JWK Set so that a
receipt or export signed years ago still verifies.

Domain separation: every signature is made for one `Domain`, and the bytes signed for one
domain can never be the bytes of another, so a signature made as one thing never verifies
as another (a manifest signature is no checkpoint, no receipt, no push):

- the registry's own formats (export manifests) are signed over a context prefix,
  `registry-signature:<domain>:v1` and a newline, then the message;
- standard formats, which off-the-shelf verifiers check over their own bytes, carry their
  context inside the signed bytes and are signed only when they have that shape:
  a checkpoint is a C2SP note body (origin, size, root, time: five lines), a receipt a JWS
  signing input whose protected header has `typ` = `registry-check-receipt+jws`, a push or
  pull answer an RFC 9421 signature base whose `@signature-params` carry the domain's `tag`.
  None of these begins with the prefix; their shapes exclude each other (a JWS input has
  no newline and no quote, a signature base begins with a quote, a note body does not).

`sign` refuses a message that does not have its domain's shape; `verify` answers False.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from registry.identity.errors import KeyConfigError, KeysUnavailable
from registry.identity.signing import b64url
from registry.settings import Settings

CONTEXT_PREFIX = b"registry-signature:"
RECEIPT_HEADER_TYPE = "registry-check-receipt+jws"

_log = logging.getLogger(__name__)


class Domain(StrEnum):
    EXPORT_MANIFEST = "export-manifest"
    CHECKPOINT = "checkpoint"
    RECEIPT = "check-receipt"
    HTTP_PUSH = "http-push"  # RFC 9421 requests: agency and watchlist pushes
    HTTP_RESPONSE = "http-response"  # RFC 9421 responses: signed pulls


# Raw formats: signed over this prefix and the message.
RAW_CONTEXTS: dict[Domain, bytes] = {Domain.EXPORT_MANIFEST: CONTEXT_PREFIX + b"export-manifest:v1\n"}
# RFC 9421 `tag` parameter per HTTP domain (RFC 9421 section 2.3: an application's context).
HTTP_TAGS: dict[Domain, str] = {
    Domain.HTTP_PUSH: "defaulter-registry-push",
    Domain.HTTP_RESPONSE: "defaulter-registry-response",
}

_B64URL = re.compile(rb"[A-Za-z0-9_-]+")
_CHECKPOINT_LINE = re.compile(r"[^\x00-\x1f\x7f]*")


class WrongDomain(ValueError):
    """The message does not have the shape of the domain it is signed or verified for."""


def _is_checkpoint(message: bytes) -> bool:
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return False
    lines = text.split("\n")
    if len(lines) != 5 or lines[4] != "" or not all(_CHECKPOINT_LINE.fullmatch(line) for line in lines):
        return False
    origin, size, root, time = lines[:4]
    if not origin or origin.startswith('"') or not size.isascii() or not size.isdigit():
        return False
    try:
        raw_root = base64.b64decode(root, validate=True)
    except (ValueError, binascii.Error):
        return False
    return len(raw_root) == 32 and time.startswith("time ")


def _is_receipt_input(message: bytes) -> bool:
    header, dot, payload = message.partition(b".")
    if not dot or not _B64URL.fullmatch(header) or not _B64URL.fullmatch(payload):
        return False
    return _is_receipt_header(header)


# Every receipt a key signs has the same header: decoded once, not once per bank check
# (a few entries: one per signing key; only the registry's own signer asks).
@lru_cache(maxsize=8)
def _is_receipt_header(header: bytes) -> bool:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return False
    return isinstance(decoded, dict) and decoded.get("typ") == RECEIPT_HEADER_TYPE


def _is_http_base(message: bytes, tag: str) -> bool:
    if not message.startswith(b'"'):
        return False
    last = message.rsplit(b"\n", 1)[-1]
    return last.startswith(b'"@signature-params": ') and f';tag="{tag}"'.encode() in last


def signed_bytes(domain: Domain, message: bytes) -> bytes:
    """What is signed for `message` in `domain`; WrongDomain if it lacks the domain's shape."""
    context = RAW_CONTEXTS.get(domain)
    if context is not None:
        return context + message
    if message.startswith(CONTEXT_PREFIX):
        raise WrongDomain("only the registry's raw formats begin with the context prefix")
    if domain is Domain.CHECKPOINT:
        shaped = _is_checkpoint(message)
    elif domain is Domain.RECEIPT:
        shaped = _is_receipt_input(message)
    else:
        shaped = _is_http_base(message, HTTP_TAGS[domain])
    if not shaped:
        raise WrongDomain(f"not a {domain.value} message")
    return message


def registry_key_id(public_key: bytes) -> str:
    """Derived from the key itself, so the same key always has the same id."""
    return "rk_" + hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class _KeySet:
    """One set of signing keys, never changed: a new file makes a new set."""

    keys: dict[str, Ed25519PrivateKey]
    active_key_id: str
    # The active key as libsodium holds it (seed and public key), made on first use.
    sodium: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)


class RegistrySigner:
    """The registry's signing keys: the active one signs, every one verifies and is published.

    Callers read `key_id` and then sign (a receipt's header, a checkpoint's row, a push's
    `keyid`, a manifest's `key_id`): `sign` signs with the key whose id this thread was
    handed last (once; without one, the active key), so that a key set replaced in between
    (`FileSigner`) never labels one key's signature with another key's id."""

    def __init__(self, keys: dict[str, Ed25519PrivateKey], active_key_id: str) -> None:
        self._set = _KeySet(dict(keys), active_key_id)
        self._handed_out = threading.local()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(active_key_id={self._set.active_key_id!r}, keys={sorted(self._set.keys)})"
        )

    def _current(self) -> _KeySet:
        return self._set

    def follow(self) -> None:
        """Keys given once (REGISTRY_SIGNING_KEYS): nothing to follow; changing them takes a restart."""

    @property
    def keys(self) -> dict[str, Ed25519PrivateKey]:
        return self._current().keys

    @property
    def active_key_id(self) -> str:
        current = self._current()
        self._handed_out.key_set = current
        return current.active_key_id

    @property
    def key_id(self) -> str:
        return self.active_key_id

    def sign(self, domain: Domain, message: bytes) -> bytes:
        """Ed25519 over `signed_bytes(domain, message)`; WrongDomain for a misshapen message.

        Signed by libsodium: Ed25519 signatures are deterministic (RFC 8032), so these are
        the bytes OpenSSL would give (`tests/registry/identity/test_signature_domains.py`),
        for ~40% less CPU than `cryptography`'s call, measured here (every bank check signs)."""
        key_set: _KeySet | None = getattr(self._handed_out, "key_set", None)
        self._handed_out.key_set = None
        if key_set is None:
            key_set = self._current()
        kid = key_set.active_key_id
        secret = key_set.sodium.get(kid)
        if secret is None:
            secret = crypto_sign_seed_keypair(key_set.keys[kid].private_bytes_raw())[1]
            key_set.sodium[kid] = secret
        return crypto_sign(signed_bytes(domain, message), secret)[:64]

    def public_key(self, key_id: str) -> Ed25519PublicKey | None:
        private = self._current().keys.get(key_id)
        return None if private is None else private.public_key()

    def verify(self, domain: Domain, key_id: str, signature: bytes, message: bytes) -> bool:
        public = self.public_key(key_id)
        if public is None:
            return False
        try:
            public.verify(signature, signed_bytes(domain, message))
        except (InvalidSignature, WrongDomain):
            return False
        return True

    def jwks(self) -> dict[str, Any]:
        """RFC 8037 OKP keys, active key first."""
        current = self._current()
        active = current.active_key_id
        ordered = [active, *sorted(k for k in current.keys if k != active)]
        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": b64url(current.keys[kid].public_key().public_bytes_raw()),
                    "kid": kid,
                    "alg": "EdDSA",
                    "use": "sig",
                }
                for kid in ordered
            ]
        }


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_ino, stat.st_size


class FileSigner(RegistrySigner):
    """The signing key file's keys. Once `follow` is called (a running process, web or worker:
    `registry/identity/plugin.py`) the file is re-read when it changes on disk, so that the
    service publishes the key `registry keys rotate-signing` made, and signs with it, without
    a restart (as `SecretsSource` follows the secrets file: checked at each use). Until then
    (a command) the keys are those read at load.

    A changed file is taken only if it still holds every key already loaded: a key once
    published stays published, or what it signed would stop verifying against the JWK Set.
    A file that vanishes, cannot be read or parsed, or lacks a loaded key (another
    environment's file copied over this one) leaves the loaded keys in use and is reported
    in the log once per change. Dropping a key takes a restart."""

    def __init__(self, path: Path, raw_keys: list[bytes], stamp: tuple[int, int, int] | None) -> None:
        loaded = _key_set(raw_keys)
        super().__init__(loaded.keys, loaded.active_key_id)
        self._path = path
        self._stamp = stamp
        self._lock = threading.Lock()
        self._following = False

    def follow(self) -> None:
        """From now on, each use first looks for a change of the file since it was read."""
        self._following = True

    def _current(self) -> _KeySet:
        if not self._following:
            return self._set
        stamp = _file_stamp(self._path)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload(stamp)
        return self._set

    def _reload(self, stamp: tuple[int, int, int] | None) -> None:
        loaded = self._set
        try:
            raws = _read_signing_file(self._path)
            if raws is None:
                raise KeyConfigError(f"the signing key file {self._path} is gone")
            fresh = _key_set(raws)
        except (KeyConfigError, ValueError) as exc:
            _log.error("signing key file unusable, keeping the keys already loaded: %s", exc)
        else:
            dropped = sorted(set(loaded.keys) - set(fresh.keys))
            if dropped:
                _log.error(
                    "the signing key file %s changed but lacks keys already published, keeping the keys "
                    "already loaded (dropping a key takes a restart): %s",
                    self._path,
                    ", ".join(dropped),
                )
            elif fresh.keys.keys() != loaded.keys.keys() or fresh.active_key_id != loaded.active_key_id:
                self._set = fresh
                _log.info(
                    "signing keys reloaded from %s: %s signs, %d published",
                    self._path,
                    fresh.active_key_id,
                    len(fresh.keys),
                )
        self._stamp = stamp


def _key_set(raw_keys: list[bytes]) -> _KeySet:
    """The first key is the active one."""
    keys = {}
    for raw in raw_keys:
        private = Ed25519PrivateKey.from_private_bytes(raw)
        keys[registry_key_id(private.public_key().public_bytes_raw())] = private
    active = Ed25519PrivateKey.from_private_bytes(raw_keys[0])
    return _KeySet(keys, registry_key_id(active.public_key().public_bytes_raw()))


def _decode(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyConfigError(f"{what} is not valid base64") from exc
    if len(raw) != 32:
        raise KeyConfigError(f"{what} is not a raw 32-byte Ed25519 private key")
    return raw


_WARNED: set[Path] = set()


def warn_if_readable_by_others(path: Path) -> None:
    """A key file other users may read or write (0644 after a copy) still loads, with a
    warning each time it is read: the keys in it may already have leaked."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o077 and path not in _WARNED:
        _WARNED.add(path)  # once a process: the file is read at every start of a service
        _log.warning("%s is readable or writable by other users (mode %o): chmod 600 it", path, mode & 0o777)


def _read_signing_file(path: Path) -> list[bytes] | None:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyConfigError(f"cannot read the signing key file {path}: {exc.strerror}") from exc
    warn_if_readable_by_others(path)
    try:
        values = json.loads(text.decode())["keys"]
        raws = [_decode(value, f"a key of {path}") for value in values]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyConfigError(f"the signing key file {path} is not a signing key file: {exc!r}") from exc
    if not raws:
        raise KeyConfigError(f"the signing key file {path} holds no key")
    return raws


def load_signer_if_present(settings: Settings) -> RegistrySigner | None:
    """From REGISTRY_SIGNING_KEYS (comma-separated base64 raw private keys, the first one
    active) when set; otherwise from the signing key file, or None when it does not exist,
    which a running process follows as it changes (`FileSigner.follow`). Never creates a
    key (registry/identity/keystore.py does, for an empty database only)."""
    if settings.keys.signing_keys:
        parts = [part for part in settings.keys.signing_keys.split(",") if part.strip()]
        raws = [_decode(part, "REGISTRY_SIGNING_KEYS") for part in parts]
        if not raws:
            raise KeyConfigError("REGISTRY_SIGNING_KEYS holds no key")
        loaded = _key_set(raws)
        return RegistrySigner(loaded.keys, loaded.active_key_id)
    path = settings.keys.signing_key_file
    stamp = _file_stamp(path)  # before reading: a change meanwhile is read again at first use
    raws_or_none = _read_signing_file(path)
    return None if raws_or_none is None else FileSigner(path, raws_or_none, stamp)


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
