"""Re-encrypting every ciphertext under the active data key (`registry keys rotate`),
recomputing every stored blind index under the active blind-index key (`registry keys
rotate --blind-index`), and retiring a key once nothing depends on it (`registry keys
retire`).

Where blind indexes are stored, and what a rotation does with each:

- `listings.debtor_id_blind`: recomputed from `debtor_id_cipher`;
- `listings.details.creditor_key`: recomputed from the current version's signed listing;
- `watch_subjects.subject_blind`: recomputed from `subject_cipher`; rows added before
  revision 0017 have none and cannot be: they are reported, per bank, and block the
  retirement of the old key until the bank adds them again (which stores the ciphertext);
- `check_log.subject_blind`: left as written. The log is an audit record, never looked up
  by identifier by the service, and is purged after its retention; its values from before
  a rotation are under the old key (see docs/privacy.md).

Search documents hold no index of their own (the embedded engine joins `listings`); a
Meilisearch index keeps a copy, refreshed by `registry search reindex`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)

from registry import progress
from registry.checks.models import PURPOSE_WATCH_SUBJECT, WatchSubject
from registry.db import Database
from registry.identity.crypto import BlindIndex, DataKeyring, Secrets
from registry.identity.models import RegistryKey
from registry.identity.types import index_input
from registry.listings.models import Listing, ListingVersion, Removal
from registry.listings.prepare import PURPOSE_DEBTOR_ID, PURPOSE_REMOVAL, PURPOSE_SIGNED, creditor_index_input
from registry.listings.schemas import ListingIn

PAGE = 2000
# Smaller pages for the blind index: each row costs a decryption and an HMAC (a signed
# listing's too for a creditor's code), and on SQLite a page holds the one writer lock.
BLIND_PAGE = 500


def debtor_blind(secrets: Secrets, id_type: str, identifier: str, *, key: int = 0) -> bytes:
    """A debtor's blind index from the decrypted identifier and its type, as ingest computes
    it (`index_input`): the ONE place rotation and the key check call the blind index (`key`
    0 is the active key, 1 the retiring one)."""
    return secrets.blind_indexes()[key](index_input(id_type, identifier))


def sample_listing(conn: Connection) -> Any:
    """One listing (its kind, ciphertext and stored index), to test keys against the data."""
    query = select(Listing.debtor_id_type, Listing.debtor_id_cipher, Listing.debtor_id_blind).limit(1)
    return conn.execute(query).first()


def debtor_blind_candidates(secrets: Secrets, row: Any) -> list[bytes]:
    """The indexes this listing may carry under the keys held (active, and retiring)."""
    identifier = secrets.keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode()
    return [
        debtor_blind(secrets, row.debtor_id_type, identifier, key=i)
        for i in range(len(secrets.blind_indexes()))
    ]


# (table, its key columns, the encrypted column, the purpose it is bound to)
ENCRYPTED_COLUMNS: list[tuple[Any, tuple[str, ...], str, bytes]] = [
    (Listing, ("id",), "debtor_id_cipher", PURPOSE_DEBTOR_ID),
    (ListingVersion, ("listing_id", "version"), "signed_cipher", PURPOSE_SIGNED),
    (Removal, ("listing_id",), "signed_cipher", PURPOSE_REMOVAL),
    (WatchSubject, ("client_id", "subject_blind"), "subject_cipher", PURPOSE_WATCH_SUBJECT),
]


def reencrypt_page(
    conn: Connection,
    keyring: DataKeyring,
    table: Any,
    keys: tuple[str, ...],
    column: str,
    purpose: bytes,
    after: tuple[Any, ...] | None,
) -> tuple[int, tuple[Any, ...] | None, int]:
    """Re-encrypt one page; returns (rows rewritten, where the next page starts or None at
    the end, rows read)."""
    key_cols = [getattr(table, k) for k in keys]
    cipher_col = getattr(table, column)
    query = select(*key_cols, cipher_col).where(cipher_col.is_not(None)).order_by(*key_cols).limit(PAGE)
    if after is not None:
        query = query.where(tuple_(*key_cols) > tuple_(*after))
    rows = conn.execute(query).all()
    if not rows:
        return 0, None, 0
    updates = []
    for row in rows:
        blob = bytes(row[-1])
        if DataKeyring.key_id_of(blob) != keyring.active_key_id:
            fresh = keyring.encrypt(keyring.decrypt(blob, purpose), purpose)
            updates.append({**{f"k_{k}": v for k, v in zip(keys, row[:-1], strict=True)}, "cipher": fresh})
    if updates:
        statement = update(table).values({column: bindparam("cipher")})
        for key, col in zip(keys, key_cols, strict=True):
            statement = statement.where(col == bindparam(f"k_{key}"))
        conn.execution_options(synchronize_session=False).execute(statement, updates)
    return len(updates), tuple(rows[-1][:-1]), len(rows)


async def reencrypt_everything(db: Database, keyring: DataKeyring) -> int:
    """Re-encrypt every ciphertext not under the active key, a page per transaction (the
    service keeps answering: each row decrypts under whichever key it names throughout).
    Reports each page to the command's progress bar."""
    total = 0
    for table, keys, column, purpose in ENCRYPTED_COLUMNS:
        after: tuple[Any, ...] | None = None
        while True:
            count, after, scanned = await db.write(
                reencrypt_page, keyring, table, keys, column, purpose, after
            )
            total += count
            progress.advance(scanned)
            if after is None:
                break
    return total


def ciphertext_count(conn: Connection) -> int:
    """Every stored ciphertext (what `registry keys rotate` walks): the progress bar's total."""
    return sum(
        conn.execute(select(func.count()).where(getattr(table, column).is_not(None))).scalar_one()
        for table, _, column, _ in ENCRYPTED_COLUMNS
    )


def key_id_in_header(conn: Connection, column: Any) -> Any:
    """SQL for the key id in a ciphertext's header (format byte, id length, id)."""
    name = f"{column.table.name}.{column.name}"
    if conn.dialect.name == "postgresql":
        return literal_column(f"convert_from(substring({name} from 3 for get_byte({name}, 1)), 'UTF8')")
    return literal_column(f"CAST(substr({name}, 3, unicode(CAST(substr({name}, 2, 1) AS TEXT))) AS TEXT)")


def encrypted_under(conn: Connection, key_id: str) -> dict[str, int]:
    """How many values each encrypted column still holds under `key_id` (a full scan)."""
    counts = {}
    for table, _, column, _ in ENCRYPTED_COLUMNS:
        col = getattr(table, column)
        query = (
            select(func.count())
            .select_from(table)
            .where(col.is_not(None), key_id_in_header(conn, col) == key_id)
        )
        counts[f"{table.__tablename__}.{column}"] = conn.execute(query).scalar_one()
    return counts


class StillInUse(RuntimeError):
    pass


def retire_data_key(conn: Connection, key_id: str, active_key_id: str, now: datetime) -> None:
    """Mark a data key retired (the start-up check stops requiring it), refusing while it is
    the active key or anything is still encrypted under it."""
    if key_id == active_key_id:
        raise StillInUse(
            f"{key_id} is the active data key: make another active and run `registry keys rotate`"
        )
    counts = {where: n for where, n in encrypted_under(conn, key_id).items() if n}
    if counts:
        detail = ", ".join(f"{where}: {n}" for where, n in counts.items())
        raise StillInUse(
            f"{sum(counts.values())} values are still encrypted under {key_id} ({detail}): "
            "run `registry keys rotate` first"
        )
    mark_retired(conn, key_id, "data", now)


def mark_retired(conn: Connection, key_id: str, kind: str, now: datetime) -> None:
    """Record the key as retired (a key the registry never recorded is recorded so)."""
    row = conn.execute(select(RegistryKey).where(RegistryKey.key_id == key_id)).first()
    if row is None:
        values = {"key_id": key_id, "kind": kind, "created_at": now, "retired_at": now}
        conn.execute(insert(RegistryKey).values(values))
    else:
        conn.execute(update(RegistryKey).where(RegistryKey.key_id == key_id).values(retired_at=now))


# ---- the blind-index key ----


@dataclass
class BlindRotation:
    """What a pass over the stored blind indexes found (`dry`: counted, nothing written)."""

    listings: int = 0  # listings whose index (or creditor's) was not under the active key
    watch_subjects: int = 0  # watched subjects likewise
    # Watched subjects without their identifier, per bank: they cannot be recomputed.
    unrecoverable: Counter[str] = field(default_factory=Counter)

    def add(self, other: BlindRotation) -> None:
        self.listings += other.listings
        self.watch_subjects += other.watch_subjects
        self.unrecoverable.update(other.unrecoverable)


def unrecoverable_watch_subjects(conn: Connection) -> int:
    """Watched subjects without their identifier (added before revision 0017)."""
    query = select(func.count()).select_from(WatchSubject).where(WatchSubject.subject_cipher.is_(None))
    return int(conn.execute(query).scalar_one())


def blind_row_count(conn: Connection) -> int:
    """The rows a blind-index pass walks: the progress bar's total."""
    return sum(
        conn.execute(select(func.count()).select_from(table)).scalar_one()
        for table in (Listing, WatchSubject)
    )


def _creditor_key(keyring: DataKeyring, blind: BlindIndex, signed_cipher: bytes) -> str | None:
    listing = msgspec.convert(json.loads(keyring.decrypt(signed_cipher, PURPOSE_SIGNED)), ListingIn)
    index = creditor_index_input(listing, stored=True)
    return None if index is None else blind(index).hex()


def reindex_listings_page(
    conn: Connection, secrets: Secrets, after: str | None, *, dry: bool = False
) -> tuple[BlindRotation, str | None, int]:
    """Recompute one page of listings' indexes under the active key; returns (what was not
    under it, where the next page starts or None at the end, rows read)."""
    active = BlindIndex(secrets.blind_index_key)
    query = (
        select(
            Listing.id,
            Listing.debtor_id_type,
            Listing.debtor_id_cipher,
            Listing.debtor_id_blind,
            Listing.details,
            ListingVersion.signed_cipher,
        )
        .outerjoin(
            ListingVersion,
            and_(ListingVersion.listing_id == Listing.id, ListingVersion.version == Listing.version),
        )
        .order_by(Listing.id)
        .limit(BLIND_PAGE)
    )
    if after is not None:
        query = query.where(Listing.id > after)
    rows = conn.execute(query).all()
    if not rows:
        return BlindRotation(), None, 0
    updates = []
    for row in rows:
        number = secrets.keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode()
        blind = active(index_input(row.debtor_id_type, number))
        details = dict(row.details or {})
        if bytes(row.debtor_id_blind) == blind and (not dry or "creditor_key" not in details):
            # Written under the active key (a page of an earlier pass, or an ingest since):
            # its creditor's index went with it.
            continue
        if details.get("creditor_key") is not None and row.signed_cipher is not None:
            details["creditor_key"] = _creditor_key(secrets.keyring, active, bytes(row.signed_cipher))
        if bytes(row.debtor_id_blind) != blind or details != (row.details or {}):
            updates.append({"k_id": row.id, "blind": blind, "details": details})
    if updates and not dry:
        statement = (
            update(Listing)
            .where(Listing.id == bindparam("k_id"))
            .values(debtor_id_blind=bindparam("blind"), details=bindparam("details"))
        )
        conn.execution_options(synchronize_session=False).execute(statement, updates)
    return BlindRotation(listings=len(updates)), rows[-1].id, len(rows)


def reindex_watch_page(
    conn: Connection, secrets: Secrets, after: tuple[str, bytes] | None, *, dry: bool = False
) -> tuple[BlindRotation, tuple[str, bytes] | None, int]:
    """Recompute one page of watched subjects' indexes under the active key."""
    active = BlindIndex(secrets.blind_index_key)
    key = tuple_(WatchSubject.client_id, WatchSubject.subject_blind)
    query = (
        select(WatchSubject.client_id, WatchSubject.subject_blind, WatchSubject.subject_cipher)
        .order_by(WatchSubject.client_id, WatchSubject.subject_blind)
        .limit(BLIND_PAGE)
    )
    if after is not None:
        query = query.where(key > tuple_(*after))
    rows = conn.execute(query).all()
    if not rows:
        return BlindRotation(), None, 0
    found = BlindRotation()
    moves: list[tuple[str, bytes, bytes]] = []
    for row in rows:
        if row.subject_cipher is None:
            found.unrecoverable[row.client_id] += 1
            continue
        blind = active(secrets.keyring.decrypt(bytes(row.subject_cipher), PURPOSE_WATCH_SUBJECT).decode())
        if blind != bytes(row.subject_blind):
            moves.append((row.client_id, bytes(row.subject_blind), blind))
    found.watch_subjects = len(moves)
    if moves and not dry:
        # The bank may watch the subject under the new index already (added again during the
        # rotation): then the old row goes, the one row per subject stays.
        taken = set(
            conn.execute(
                select(WatchSubject.client_id, WatchSubject.subject_blind).where(
                    key.in_([(client, new) for client, _, new in moves])
                )
            ).tuples()
        )
        for client, old, new in moves:
            where = (WatchSubject.client_id == client, WatchSubject.subject_blind == old)
            if (client, new) in taken:
                conn.execute(delete(WatchSubject).where(*where))
            else:
                conn.execute(update(WatchSubject).where(*where).values(subject_blind=new))
    last = rows[-1]
    return found, (last.client_id, bytes(last.subject_blind)), len(rows)


async def reindex_everything(db: Database, secrets: Secrets, *, dry: bool = False) -> BlindRotation:
    """Every stored blind index under the active key, a page per transaction (the service
    keeps answering: lookups match under the active and the retiring key throughout).
    Resumable: a page already recomputed is read and left alone. With `dry`, counts only
    (read transactions), for `registry keys retire`."""
    total = BlindRotation()
    run = db.read if dry else db.write
    listing_after: str | None = None
    while True:
        found, listing_after, scanned = await run(reindex_listings_page, secrets, listing_after, dry=dry)
        total.add(found)
        progress.advance(scanned)
        if listing_after is None:
            break
    watch_after: tuple[str, bytes] | None = None
    while True:
        found_watch, watch_after, scanned = await run(reindex_watch_page, secrets, watch_after, dry=dry)
        total.add(found_watch)
        progress.advance(scanned)
        if watch_after is None:
            break
    return total


def retire_blind_index_key(conn: Connection, key_id: str, active_key_id: str, now: datetime) -> None:
    """Mark a blind-index key retired, once a dry pass found nothing depending on it."""
    if key_id == active_key_id:
        raise StillInUse(
            f"{key_id} is the active blind-index key: put a new key first in "
            "REGISTRY_BLIND_INDEX_KEY and run `registry keys rotate --blind-index`"
        )
    mark_retired(conn, key_id, "blind_index", now)
