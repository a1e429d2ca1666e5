"""Re-encrypting every ciphertext under the active data key (`registry keys rotate`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update

from registry.db import Database
from registry.identity.crypto import DataKeyring, Secrets
from registry.listings.models import Listing, ListingVersion, Removal
from registry.listings.prepare import PURPOSE_DEBTOR_ID, PURPOSE_REMOVAL, PURPOSE_SIGNED

PAGE = 2000


def debtor_blind(secrets: Secrets, kind: str, identifier: str, *, key: int = 0) -> bytes:
    """A debtor's blind index from the decrypted identifier, as ingest computes it: the
    ONE place rotation and the key check call the blind index (`key` 0 is the active key,
    1 the retiring one), so a change to how the index is computed flows through."""
    del kind  # the identifier's kind: bound into the index once the index takes it
    return secrets.blind_indexes()[key](identifier)


def sample_listing(conn: Connection) -> Any:
    """One listing (its kind, ciphertext and stored index), to test keys against the data."""
    query = select(Listing.debtor_kind, Listing.debtor_id_cipher, Listing.debtor_id_blind).limit(1)
    return conn.execute(query).first()


def debtor_blind_candidates(secrets: Secrets, row: Any) -> list[bytes]:
    """The indexes this listing may carry under the keys held (active, and retiring)."""
    identifier = secrets.keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode()
    return [
        debtor_blind(secrets, row.debtor_kind, identifier, key=i) for i in range(len(secrets.blind_indexes()))
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
) -> tuple[int, tuple[Any, ...] | None]:
    """Re-encrypt one page; returns (rows rewritten, where the next page starts or None at the end)."""
    key_cols = [getattr(table, k) for k in keys]
    cipher_col = getattr(table, column)
    query = select(*key_cols, cipher_col).where(cipher_col.is_not(None)).order_by(*key_cols).limit(PAGE)
    if after is not None:
        query = query.where(tuple_(*key_cols) > tuple_(*after))
    rows = conn.execute(query).all()
    if not rows:
        return 0, None
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
    return len(updates), tuple(rows[-1][:-1])


async def reencrypt_everything(db: Database, keyring: DataKeyring) -> int:
    """Re-encrypt every ciphertext not under the active key, a page per transaction."""
    total = 0
    for table, keys, column, purpose in ENCRYPTED_COLUMNS:
        after: tuple[Any, ...] | None = None
        while True:
            count, after = await db.write(reencrypt_page, keyring, table, keys, column, purpose, after)
            total += count
            if after is None:
                break
    return total
