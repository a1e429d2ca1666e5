"""Re-encrypting every ciphertext under the active data key (`registry keys rotate`), and
retiring a data key once nothing is encrypted under it (`registry keys retire`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, literal_column, select, tuple_, update

from registry import progress
from registry.db import Database
from registry.identity.crypto import DataKeyring, Secrets
from registry.identity.models import RegistryKey
from registry.identity.types import index_input
from registry.listings.models import Listing, ListingVersion, Removal
from registry.listings.prepare import PURPOSE_DEBTOR_ID, PURPOSE_REMOVAL, PURPOSE_SIGNED

PAGE = 2000


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


def _key_id_of(conn: Connection, column: Any) -> Any:
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
            select(func.count()).select_from(table).where(col.is_not(None), _key_id_of(conn, col) == key_id)
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
    row = conn.execute(select(RegistryKey).where(RegistryKey.key_id == key_id)).first()
    if row is None:
        values = {"key_id": key_id, "kind": "data", "created_at": now, "retired_at": now}
        conn.execute(insert(RegistryKey).values(values))
    else:
        conn.execute(update(RegistryKey).where(RegistryKey.key_id == key_id).values(retired_at=now))
