"""Fail closed on keys: a service never invents keys for data that already exists.

At start (every `Services.create`: the server, the worker, every CLI command) the key ids
the database needs (`registry_keys`, not retired) are compared with the keys this process
holds (REGISTRY_DATA_KEYS / REGISTRY_BLIND_INDEX_KEY / REGISTRY_SIGNING_KEYS, or the key
files of the embedded set-up). Keys are generated only for an empty database; otherwise a
missing, unreadable or incomplete key source stops the process with `KeysUnavailable`,
which names the key ids it lacks. `registry keys check` runs the same comparison.

Without this, a server pointed at the wrong secrets file generated new keys, then answered
a listed person's bank check with `listed: false` (the blind index no longer matched) and
signed the answer.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, inspect, literal, select, update

from registry.checks.models import CheckLogEntry, WatchSubject
from registry.db import create_sync_engine, dialect_insert
from registry.identity.crypto import (
    DataKeyError,
    Secrets,
    generate_missing_key_files,
    load_secrets,
    load_secrets_if_present,
)
from registry.identity.errors import KeyConfigError, KeysUnavailable
from registry.identity.models import RegistryKey
from registry.identity.registry_key import load_signer_if_present, rotate_signing_key
from registry.identity.rotation import debtor_blind_candidates, key_id_in_header, sample_listing
from registry.listings.models import Listing
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.settings import Settings
from registry.timeutil import utcnow
from registry.translog.models import LogCheckpoint

__all__ = [
    "KeyConfigError",
    "KeyReport",
    "KeysUnavailable",
    "check_keys",
    "check_reloaded",
    "ensure_keys",
    "out_of_step",
    "rotate_signing",
]

KIND_DATA = "data"
KIND_BLIND = "blind_index"
KIND_SIGNING = "signing"
KINDS = (KIND_DATA, KIND_BLIND, KIND_SIGNING)

# What only exists once keys have been used: any row here means "not an empty database".
_DATA_TABLES = (Listing, LogCheckpoint, CheckLogEntry, WatchSubject)


def data_key_check(key: bytes) -> str:
    """What tells a data key's bytes apart, revealing nothing of them (an HMAC under it)."""
    return hmac.new(key, b"registry data key check", hashlib.sha256).hexdigest()[:32]


def blind_index_key_id(key: bytes) -> str:
    """An id for the blind-index key that reveals nothing about it (an HMAC under it)."""
    return "bk-" + hmac.new(key, b"registry blind-index key id", hashlib.sha256).hexdigest()[:16]


@dataclass
class HeldKeys:
    """The key ids this process can use, by kind (empty when a source is absent), and the
    data and blind-index keys as read (None when absent): read once a check."""

    data: set[str] = field(default_factory=set)
    blind_index: set[str] = field(default_factory=set)
    signing: set[str] = field(default_factory=set)
    secrets: Secrets | None = None

    def by_id(self) -> dict[str, str]:
        ids = dict.fromkeys(self.data, KIND_DATA)
        ids.update(dict.fromkeys(self.blind_index, KIND_BLIND))
        ids.update(dict.fromkeys(self.signing, KIND_SIGNING))
        return ids

    def absent_kinds(self) -> list[str]:
        return [kind for kind in KINDS if not getattr(self, kind)]


def held_keys(settings: Settings) -> HeldKeys:
    """What the configuration provides, without generating anything. Raises KeyConfigError
    when a source is there but unusable."""
    held = HeldKeys()
    secrets = held.secrets = load_secrets_if_present(settings)
    if secrets is not None:
        held.data = set(secrets.keyring.raw_keys())
        held.blind_index = {blind_index_key_id(key) for key in secrets.blind_index_keys()}
    signer = load_signer_if_present(settings)
    if signer is not None:
        held.signing = set(signer.keys)
    return held


def recorded_keys(conn: Connection) -> dict[str, str]:
    """Key id -> kind, for every key the stored data still needs."""
    rows = conn.execute(select(RegistryKey.key_id, RegistryKey.kind).where(RegistryKey.retired_at.is_(None)))
    return {row.key_id: row.kind for row in rows}


def database_is_empty(conn: Connection) -> bool:
    if conn.execute(select(RegistryKey.key_id).limit(1)).first() is not None:
        return False
    return all(
        conn.execute(select(literal(1)).select_from(table).limit(1)).first() is None for table in _DATA_TABLES
    )


def record_keys(conn: Connection, ids: dict[str, str], checks: dict[str, str] | None = None) -> None:
    """Add the ids not yet known, with the data keys' check values (a concurrent starter may
    add the same: both are fine); a data key recorded without one gets it."""
    checks = checks or {}
    known = set(conn.execute(select(RegistryKey.key_id).where(RegistryKey.key_id.in_(list(ids)))).scalars())
    fresh = [
        {
            "key_id": kid,
            "kind": kind,
            "created_at": utcnow(),
            "retired_at": None,
            "check_value": checks.get(kid),
        }
        for kid, kind in sorted(ids.items())
        if kid not in known
    ]
    if fresh:
        conn.execute(_insert_ignoring_duplicates(conn), fresh)
    for kid, check in checks.items():
        conn.execute(
            update(RegistryKey)
            .where(RegistryKey.key_id == kid, RegistryKey.check_value.is_(None))
            .values(check_value=check)
        )


def _data_checks(secrets: Secrets | None) -> dict[str, str]:
    if secrets is None:
        return {}
    return {kid: data_key_check(key) for kid, key in secrets.keyring.raw_keys().items()}


def _check_data_keys(conn: Connection, secrets: Secrets) -> dict[str, str]:
    """Each data key the stored data needs holds the bytes it was encrypted under: its check
    value where one is recorded, else (recorded before check values were kept) a stored
    ciphertext under that very key, which must decrypt. A wrong key under the right id was
    taken, and what was written under it could never be read again. Returns the check values
    now proven for keys recorded without one (to record)."""
    held = secrets.keyring.raw_keys()
    rows = conn.execute(
        select(RegistryKey.key_id, RegistryKey.check_value).where(
            RegistryKey.kind == KIND_DATA, RegistryKey.retired_at.is_(None)
        )
    ).all()
    wrong = sorted(
        row.key_id
        for row in rows
        if row.check_value is not None
        and row.key_id in held
        and not hmac.compare_digest(row.check_value, data_key_check(held[row.key_id]))
    )
    proven: dict[str, str] = {}
    for row in rows:
        if row.check_value is not None or row.key_id not in held or wrong:
            continue
        if _decrypts_a_listing_under(conn, secrets, row.key_id):
            proven[row.key_id] = data_key_check(held[row.key_id])
        else:
            wrong.append(row.key_id)
    if wrong:
        raise KeysUnavailable(
            [],
            [],
            f"data key {', '.join(wrong)}: the configured bytes are not the key the stored data was "
            "encrypted under (the id is right, the key is not)",
        )
    return proven


def _decrypts_a_listing_under(conn: Connection, secrets: Secrets, key_id: str) -> bool:
    """Whether a listing's identifier encrypted under `key_id` decrypts (true when none is:
    nothing stored depends on that key yet). Read once a key, until its check value is kept."""
    cipher = Listing.debtor_id_cipher
    found = conn.execute(select(cipher).where(key_id_in_header(conn, cipher) == key_id).limit(1)).scalar()
    if found is None:
        return True
    try:
        secrets.keyring.decrypt(bytes(found), PURPOSE_DEBTOR_ID)
    except DataKeyError:
        return False
    return True


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    return dialect_insert(conn, RegistryKey).on_conflict_do_nothing()


def _lacking(needed: dict[str, str], held: dict[str, str]) -> list[str]:
    """The needed key ids not held, each with its kind, as KeysUnavailable names them."""
    return sorted(f"{kid} ({kind.replace('_', '-')})" for kid, kind in needed.items() if kid not in held)


@dataclass(frozen=True)
class KeyReport:
    held: dict[str, str]
    needed: dict[str, str]
    generated: bool


def check_keys(conn: Connection, settings: Settings, *, generate: bool) -> KeyReport:
    """Compare, in the caller's transaction. With `generate` (a start), create the key files
    for an empty database and record the ids of the keys in use; without (`registry keys
    check`), write nothing. Raises KeysUnavailable or KeyConfigError."""
    needed = recorded_keys(conn)
    generated = False
    if not needed and database_is_empty(conn):
        if generate:
            generated = generate_missing_key_files(settings)
        held = held_keys(settings)
        if held.absent_kinds() and not generate:
            # `registry keys check` on an empty database: the first start generates them.
            return KeyReport(held.by_id(), {}, False)
        if held.absent_kinds():
            raise KeysUnavailable([], held.absent_kinds())
        if generate:
            record_keys(conn, held.by_id(), _data_checks(held.secrets))
        return KeyReport(held.by_id(), held.by_id(), generated)
    held = held_keys(settings)
    have = held.by_id()
    missing = _lacking(needed, have)
    absent = [kind for kind in held.absent_kinds() if kind not in needed.values()]
    if missing or absent:
        raise KeysUnavailable(missing, absent)
    # Held by now (a data key is recorded, or the check above refused); read again only for
    # the refusal's words should the source have gone meanwhile.
    secrets = held.secrets or load_secrets(settings)
    proven = _check_data_keys(conn, secrets)
    if KIND_BLIND not in needed.values():
        # A database from before the key record: check the blind-index key against a stored index.
        _check_blind_index_against_data(conn, secrets)
    if generate:
        # Check values for keys new to the record, and for recorded ones just proven: never for
        # a recorded key whose bytes nothing has tried.
        fresh = {kid: check for kid, check in _data_checks(secrets).items() if kid not in needed}
        record_keys(conn, have, fresh | proven)
    return KeyReport(have, needed or have, generated)


def _check_blind_index_against_data(conn: Connection, secrets: Secrets) -> None:
    row = sample_listing(conn)
    if row is None:
        return
    if bytes(row.debtor_id_blind) not in debtor_blind_candidates(secrets, row):
        raise KeysUnavailable(
            [],
            [],
            "the configured blind-index key does not compute the indexes stored in this database "
            "(the key the data was indexed under is missing)",
        )


def check_reloaded(engine: Engine, secrets: Secrets) -> None:
    """For a running process's secrets file, re-read when it changed (`SecretsSource`): raises
    KeysUnavailable unless it holds every data and blind-index key the stored data needs,
    the start-up check's rule. A database error propagates: the file is tried again."""
    held = dict.fromkeys(secrets.keyring.raw_keys(), KIND_DATA)
    held.update(dict.fromkeys(map(blind_index_key_id, secrets.blind_index_keys()), KIND_BLIND))
    with engine.connect() as conn:
        needed = {kid: kind for kid, kind in recorded_keys(conn).items() if kind != KIND_SIGNING}
        missing = _lacking(needed, held)
        if missing:
            raise KeysUnavailable(missing, [])
        _check_data_keys(conn, secrets)
        if KIND_BLIND not in needed.values():
            _check_blind_index_against_data(conn, secrets)


def out_of_step(engine: Engine, secrets: Secrets) -> str | None:
    """For a running process (`KeysInStep`): why its data and blind-index keys no longer fit
    the stored data, or None. They do not when the database needs a key it lacks (a rotation
    recorded the new one) or when its active key has been retired."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(RegistryKey.key_id, RegistryKey.kind, RegistryKey.retired_at).where(
                RegistryKey.kind.in_((KIND_DATA, KIND_BLIND))
            )
        ).all()
    held = dict.fromkeys(secrets.keyring.raw_keys(), KIND_DATA)
    held.update(dict.fromkeys(map(blind_index_key_id, secrets.blind_index_keys()), KIND_BLIND))
    reasons = []
    missing = _lacking({row.key_id: row.kind for row in rows if row.retired_at is None}, held)
    if missing:
        reasons.append("the stored data needs keys this process does not hold: " + ", ".join(missing))
    retired = {row.key_id for row in rows if row.retired_at is not None}
    active = (secrets.keyring.active_key_id, blind_index_key_id(secrets.blind_index_key))
    if in_use := [kid for kid in active if kid in retired]:
        reasons.append(f"its active key {', '.join(in_use)} is retired")
    return "; ".join(reasons) or None


def ensure_keys(settings: Settings, engine: Engine | None = None) -> KeyReport:
    """The start-up check (see the module docstring)."""
    own = engine is None
    engine = engine or create_sync_engine(settings.database.url)
    try:
        with engine.begin() as conn:
            if not inspect(conn).has_table(RegistryKey.__tablename__):
                raise KeyConfigError("the database is not migrated: run `registry db upgrade` first")
            return check_keys(conn, settings, generate=True)
    finally:
        if own:
            engine.dispose()


def rotate_signing(settings: Settings) -> str:
    """`registry keys rotate-signing`: a new active key in the signing key file (the old ones
    stay), recorded at once as a key the stored data needs, since a running service follows
    the file and signs with it from its next use: a later start without it refuses. The
    database is reached first, so that an unreachable one stops the command before the file
    changes. On an empty database nothing is recorded (its first start records what it
    holds). Returns the new key id."""
    engine = create_sync_engine(settings.database.url)
    try:
        with engine.begin() as conn:
            recording = inspect(conn).has_table(RegistryKey.__tablename__) and not database_is_empty(conn)
            key_id = rotate_signing_key(settings.keys.signing_key_file)
            if recording:
                record_keys(conn, {key_id: KIND_SIGNING})
        return key_id
    finally:
        engine.dispose()
