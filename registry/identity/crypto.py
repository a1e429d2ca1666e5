"""Encryption at rest (AES-256-GCM under a key id) and the HMAC blind index."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.identity.errors import KeyConfigError, KeysUnavailable
from registry.identity.registry_key import generate_signing_key_file, warn_if_readable_by_others
from registry.problems import Problem
from registry.settings import Settings

_log = logging.getLogger(__name__)

_FORMAT = 1
_NONCE_BYTES = 12
# A data key is an AES-256 key; its id is written into every ciphertext's header (one byte
# of length, then the id), so it is short printable ASCII: one byte a character.
DATA_KEY_BYTES = 32
KEY_ID_MAX_CHARACTERS = 64
# A blind-index key is an HMAC-SHA256 key: at least as long as the hash.
BLIND_INDEX_KEY_MIN_BYTES = 32


class DataKeyError(RuntimeError):
    """A ciphertext names a key the registry does not hold, or fails authentication; or a
    data key or its id is not one the registry can use (see `check_data_key`)."""


def key_id_problem(kid: str) -> str | None:
    """Why `kid` cannot be a data key's id, or None: printable ASCII (space to tilde),
    1 to KEY_ID_MAX_CHARACTERS characters, without `:` or `,` (REGISTRY_DATA_KEYS' separators)."""
    if not kid:
        return "is empty"
    if len(kid) > KEY_ID_MAX_CHARACTERS:
        return f"has {len(kid)} characters, more than {KEY_ID_MAX_CHARACTERS}"
    if not all(" " <= char <= "~" for char in kid):
        return "is not printable ASCII (letters, digits, punctuation, spaces)"
    if ":" in kid or "," in kid:
        return "contains ':' or ','"
    return None


def _shown(kid: str) -> str:
    return repr(kid if len(kid) <= KEY_ID_MAX_CHARACTERS else kid[:20] + "…")


def check_data_key(kid: str, key: bytes) -> None:
    """DataKeyError unless `kid` can name a data key and `key` is an AES-256 key."""
    problem = key_id_problem(kid)
    if problem is not None:
        raise DataKeyError(f"the data key id {_shown(kid)} {problem}")
    if len(key) != DATA_KEY_BYTES:
        raise DataKeyError(
            f"the data key {kid!r} is {len(key)} bytes: a data key is an AES-256 key, exactly "
            f"{DATA_KEY_BYTES} bytes (`openssl rand -base64 32`)"
        )


def check_blind_index_key(key: bytes, what: str) -> None:
    """KeyConfigError unless `key` is long enough for an HMAC-SHA256 key."""
    if len(key) < BLIND_INDEX_KEY_MIN_BYTES:
        raise KeyConfigError(
            f"{what} is {len(key)} bytes: a blind-index key is at least {BLIND_INDEX_KEY_MIN_BYTES} "
            "bytes (`openssl rand -base64 32`)"
        )


class DataKeyring:
    """Encrypts under the active key; decrypts under whichever key a ciphertext names.

    Ciphertext layout: format byte, key-id length, key id (ASCII), 96-bit nonce, AES-GCM
    output. The purpose (for example b"listing.debtor_id") is bound as associated data, so a
    ciphertext cannot be moved to another column and still decrypt.
    """

    def __init__(self, keys: dict[str, bytes], active_key_id: str) -> None:
        for kid, key in keys.items():
            check_data_key(kid, key)
        if active_key_id not in keys:
            raise DataKeyError(f"active data key {active_key_id!r} is not among the configured keys")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self._raw = dict(keys)
        self.active_key_id = active_key_id
        encoded = active_key_id.encode("ascii")
        self._header = bytes([_FORMAT, len(encoded)]) + encoded

    def raw_keys(self) -> dict[str, bytes]:
        return dict(self._raw)

    def encrypt(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return self._header + nonce + self._aead[self.active_key_id].encrypt(nonce, plaintext, purpose)

    @staticmethod
    def key_id_of(blob: bytes) -> str:
        if len(blob) < 2 or blob[0] != _FORMAT:
            raise DataKeyError("unknown ciphertext format")
        end = 2 + blob[1]
        if len(blob) < end + _NONCE_BYTES:
            raise DataKeyError("truncated ciphertext")
        try:
            return blob[2:end].decode("ascii")
        except UnicodeDecodeError as exc:
            raise DataKeyError("the ciphertext's header names no valid data key id") from exc

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
    """HMAC-SHA256 of a normalised identifier: equality lookups without the plaintext.

    During a blind-index key rotation it also holds the retiring key: what is written is
    computed under the active key (`__call__`), what is looked up is matched under both
    (`candidates`), so rows not yet recomputed are still found."""

    def __init__(self, key: bytes, previous: bytes | None = None) -> None:
        self._key = key
        self._previous = previous

    def __call__(self, normalised_identifier: str) -> bytes:
        return hmac.new(self._key, normalised_identifier.encode(), hashlib.sha256).digest()

    def candidates(self, normalised_identifier: str) -> tuple[bytes, ...]:
        """The index under the active key, then under the retiring one if there is one."""
        active = self(normalised_identifier)
        if self._previous is None:
            return (active,)
        return active, hmac.new(self._previous, normalised_identifier.encode(), hashlib.sha256).digest()

    @property
    def rotating(self) -> bool:
        return self._previous is not None


@dataclass(frozen=True)
class Secrets:
    keyring: DataKeyring
    blind_index: BlindIndex
    blind_index_key: bytes
    # During a blind-index key rotation: the key being retired, whose indexes lookups
    # still accept until every stored index is recomputed (`registry keys rotate --blind-index`).
    previous_blind_index_key: bytes | None = None

    def blind_index_keys(self) -> list[bytes]:
        """The active key, then the retiring one if a rotation is under way."""
        keys = [self.blind_index_key]
        if self.previous_blind_index_key is not None:
            keys.append(self.previous_blind_index_key)
        return keys

    def blind_indexes(self) -> list[BlindIndex]:
        """One index per held key (active first), each computing under that key alone."""
        return [BlindIndex(key) for key in self.blind_index_keys()]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def new_key_id() -> str:
    return "dk-" + secrets.token_hex(4)


# How often a running process asks the database whether its keys still fit the stored data.
KEYS_IN_STEP_SECONDS = 2.0
KEYS_OUT_OF_STEP = "keys_out_of_step"
# Failed probes in a row before a warning (the database down is said by everything else).
KEYS_PROBE_FAILURES_SAID = 15


class KeysOutOfStep(Problem):
    """The stored data has moved to keys this process does not hold (a rotation run while it
    kept its old configuration): refuse, rather than answer "not listed" or encrypt under a
    retired key. The operator's reason goes to the log, not the answer."""

    def __init__(self) -> None:
        super().__init__(
            503,
            KEYS_OUT_OF_STEP,
            "this process's keys no longer fit the stored data (a key rotation it has not been "
            "restarted for); retry, another process may answer",
            extra={"retry_after": 30},
        )


class KeysInStep:
    """Whether the keys the stored data needs are still this process's (`probe`: the reason
    when not, None when they are), asked at most every KEYS_IN_STEP_SECONDS in a thread of
    its own, so that no request waits on it; the last answer is what `current` goes by.

    The start-up check alone failed open: a web process still on the old blind-index key
    after `registry keys rotate --blind-index` answered a listed person's bank check
    `listed: false`, and one still on a data key that `registry keys retire` had retired
    kept encrypting under it (docs/operations.md, Keys)."""

    def __init__(self, probe: Callable[[Secrets], str | None]) -> None:
        self._probe = probe
        self._due = time.monotonic() + KEYS_IN_STEP_SECONDS  # the start-up check just ran
        self._running = threading.Lock()
        self.reason: str | None = None
        self._failures = 0

    def poll(self, secrets: Secrets) -> None:
        if time.monotonic() < self._due or not self._running.acquire(blocking=False):
            return
        threading.Thread(target=self._ask, args=(secrets,), name="keys-in-step", daemon=True).start()

    def ask_now(self) -> None:
        """New keys were loaded (a secrets file followed): ask at the next use, not in 2 s."""
        self._due = 0.0

    def _ask(self, secrets: Secrets) -> None:
        try:
            reason = self._probe(secrets)
            self._failures = 0
        except Exception as exc:  # the database unreachable: what it answers then is its own refusal
            self._failures += 1
            if self._failures == KEYS_PROBE_FAILURES_SAID:
                # Not silent for ever (a role that cannot read registry_keys would keep the
                # last answer): said once, then again only after a success.
                _log.warning("keys in-step check failing (%s): keeping its last answer", type(exc).__name__)
            reason = self.reason
        try:
            if reason != self.reason:
                if reason is None:
                    _log.warning("keys fit the stored data again")
                else:
                    _log.error("refusing what needs keys: %s; restart this process with the new keys", reason)
            self.reason = reason
        finally:
            self._due = time.monotonic() + KEYS_IN_STEP_SECONDS
            self._running.release()


class SecretsSource:
    """The current secrets. A secrets file is re-read when it changes on disk, so that a
    running service follows `registry keys rotate` without a restart. A file that
    disappears, cannot be read, or holds a key the registry cannot use (`check_data_key`,
    `check_blind_index_key`) meanwhile leaves the keys already loaded in use (they are
    still the right ones) and is reported in the log once: never replaced by new keys.

    A file that reads well is taken only if `fits` accepts it: the start-up check's rule
    (`registry.identity.keystore`), that it holds every key the stored data needs. Another
    environment's file copied over this one was taken as it was, and a listed person's bank
    check answered `listed: false` under its blind-index key, signed."""

    def __init__(
        self,
        settings: Settings,
        fits: Callable[[Secrets], None] | None = None,
        in_step: Callable[[Secrets], str | None] | None = None,
    ) -> None:
        self._settings = settings
        self._fits = fits
        self._in_step = None if in_step is None else KeysInStep(in_step)
        self._stamp: float | None = None
        self._secrets = load_secrets(settings)
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> float | None:
        if self._settings.keys.data_keys:
            return None
        try:
            return self._settings.keys.secrets_file.stat().st_mtime
        except OSError:
            return None

    def current(self) -> Secrets:
        stamp = self._file_stamp()
        if stamp != self._stamp:
            try:
                loaded = load_secrets(self._settings)
                if self._fits is not None:
                    self._fits(loaded)
            except KeysUnavailable as exc:
                _log.error(
                    "secrets file changed but lacks keys the stored data needs, keeping the keys "
                    "already loaded: %s",
                    "; ".join([*exc.missing, *exc.absent]) or exc.detail,
                )
            except (KeyConfigError, DataKeyError) as exc:
                _log.error("secrets file unusable, keeping the keys already loaded: %s", exc)
            else:
                self._secrets = loaded
                if self._in_step is not None:
                    self._in_step.ask_now()
            self._stamp = stamp
        if self._in_step is not None:
            self._in_step.poll(self._secrets)
            if self._in_step.reason is not None:
                raise KeysOutOfStep()
        return self._secrets

    def out_of_step(self) -> str | None:
        """Why this process's keys no longer fit the stored data, for `/readyz` (None: they do)."""
        if self._in_step is None:
            return None
        self._in_step.poll(self._secrets)
        return self._in_step.reason


def _decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise KeyConfigError(f"{what} is not valid base64") from exc


def _env_secrets(settings: Settings) -> Secrets:
    keys = {}
    for part in (settings.keys.data_keys or "").split(","):
        kid, _, value = part.strip().partition(":")
        if not kid or not value:
            raise KeyConfigError("REGISTRY_DATA_KEYS is 'kid:base64,kid2:base64'")
        keys[kid] = _decode(value, f"REGISTRY_DATA_KEYS key {_shown(kid)}")
        try:
            check_data_key(kid, keys[kid])
        except DataKeyError as exc:
            raise KeyConfigError(f"REGISTRY_DATA_KEYS: {exc}") from exc
    # Stripped as the ids in REGISTRY_DATA_KEYS are, so that " dk-1" names the key "dk-1".
    active = (settings.keys.data_key_id or "").strip() or next(iter(keys))
    if not settings.keys.blind_index_key:
        detail = "REGISTRY_BLIND_INDEX_KEY must be set along with REGISTRY_DATA_KEYS"
        raise KeysUnavailable([], ["blind_index"], detail)
    blind = [_decode(v.strip(), "REGISTRY_BLIND_INDEX_KEY") for v in settings.keys.blind_index_key.split(",")]
    if len(blind) > 2:
        raise KeyConfigError("REGISTRY_BLIND_INDEX_KEY holds the active key and at most one retiring key")
    for position, key in zip(("the active key", "the retiring key"), blind, strict=False):
        check_blind_index_key(key, f"REGISTRY_BLIND_INDEX_KEY: {position}")
    previous = blind[1] if len(blind) > 1 else None
    try:
        keyring = DataKeyring(keys, active)
    except DataKeyError as exc:
        raise KeyConfigError(f"REGISTRY_DATA_KEY_ID: {exc}") from exc
    return Secrets(keyring, BlindIndex(blind[0], previous), blind[0], previous)


def load_secrets_if_present(settings: Settings) -> Secrets | None:
    """Keys from the environment when given; otherwise from the secrets file, or None when
    that file does not exist. Never creates keys (see registry/identity/keystore.py).
    KeyConfigError for a key the registry cannot use (`check_data_key`, `check_blind_index_key`)."""
    if settings.keys.data_keys:
        return _env_secrets(settings)
    # Read with REGISTRY_DATA_KEYS only: set alone, the secrets file's keys were used instead,
    # silently, whatever the operator meant the process to hold.
    alone = [
        name
        for name, value in (
            ("REGISTRY_DATA_KEY_ID", settings.keys.data_key_id),
            ("REGISTRY_BLIND_INDEX_KEY", settings.keys.blind_index_key),
        )
        if value
    ]
    if alone:
        raise KeyConfigError(
            f"{' and '.join(alone)} set without REGISTRY_DATA_KEYS: set the data keys too, or unset "
            f"{'them' if len(alone) > 1 else 'it'} to use the secrets file {settings.keys.secrets_file}"
        )
    path = settings.keys.secrets_file
    stored = SecretsFile(path).read()
    if stored is None:
        return None
    keys, active, blind, previous = stored
    check_blind_index_key(blind, f"{path}: blind_index_key")
    if previous is not None:
        check_blind_index_key(previous, f"{path}: previous_blind_index_key")
    try:
        keyring = DataKeyring(keys, active)
    except DataKeyError as exc:
        raise KeyConfigError(f"{path}: {exc}") from exc
    return Secrets(keyring, BlindIndex(blind, previous), blind, previous)


def load_secrets(settings: Settings) -> Secrets:
    """The data and blind-index keys, or KeysUnavailable when none are configured.

    The file exists so that the embedded demo works from a fresh clone (generated for an
    empty database only); production passes REGISTRY_DATA_KEYS, REGISTRY_DATA_KEY_ID and
    REGISTRY_BLIND_INDEX_KEY.
    """
    loaded = load_secrets_if_present(settings)
    if loaded is None:
        raise KeysUnavailable(
            [], ["data", "blind_index"], f"the secrets file {settings.keys.secrets_file} does not exist"
        )
    return loaded


def generate_missing_key_files(settings: Settings) -> bool:
    """For an empty database only (the caller checks): create the key files of the embedded
    set-up that do not exist yet. Returns whether anything was created."""
    created = False
    if not settings.keys.data_keys and not settings.keys.secrets_file.exists():
        kid = new_key_id()
        created |= SecretsFile(settings.keys.secrets_file).create(
            {kid: AESGCM.generate_key(bit_length=256)}, kid, secrets.token_bytes(32)
        )
    if not settings.keys.signing_keys:
        created |= generate_signing_key_file(settings.keys.signing_key_file)
    return created


class SecretsFile:
    """The generated-keys file of the embedded set-up (mode 0600, never committed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> tuple[dict[str, bytes], str, bytes, bytes | None] | None:
        """(data keys, active id, blind-index key, retiring blind-index key), or None when
        the file does not exist; KeyConfigError when it cannot be read or parsed."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyConfigError(f"cannot read the secrets file {self.path}: {exc.strerror}") from exc
        warn_if_readable_by_others(self.path)
        try:
            stored = json.loads(raw.decode())
            keys = {str(kid): _decode(value, f"data key {kid}") for kid, value in stored["data_keys"].items()}
            previous = stored.get("previous_blind_index_key")
            return (
                keys,
                str(stored["active_data_key_id"]),
                _decode(stored["blind_index_key"], "blind_index_key"),
                None if previous is None else _decode(previous, "previous_blind_index_key"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyConfigError(f"the secrets file {self.path} is not a secrets file: {exc!r}") from exc

    def load(self) -> tuple[dict[str, bytes], str, bytes]:
        stored = self.read()
        if stored is None:
            raise KeysUnavailable([], ["data", "blind_index"], f"the secrets file {self.path} does not exist")
        return stored[0], stored[1], stored[2]

    def _body(
        self, keys: dict[str, bytes], active_key_id: str, blind_index_key: bytes, previous: bytes | None
    ) -> str:
        body: dict[str, Any] = {
            "data_keys": {kid: _b64(key) for kid, key in keys.items()},
            "active_data_key_id": active_key_id,
            "blind_index_key": _b64(blind_index_key),
        }
        if previous is not None:
            body["previous_blind_index_key"] = _b64(previous)
        return json.dumps(body, indent=2)

    def _write_tmp(self, text: str) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    def save(
        self,
        keys: dict[str, bytes],
        active_key_id: str,
        blind_index_key: bytes,
        previous_blind_index_key: bytes | None = None,
    ) -> None:
        tmp = self._write_tmp(self._body(keys, active_key_id, blind_index_key, previous_blind_index_key))
        os.replace(tmp, self.path)

    def create(self, keys: dict[str, bytes], active_key_id: str, blind_index_key: bytes) -> bool:
        """Only if no file is there yet (two processes starting at once: one wins, the
        other reads the winner's). Returns whether this call created it."""
        tmp = self._write_tmp(self._body(keys, active_key_id, blind_index_key, None))
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
        return True
