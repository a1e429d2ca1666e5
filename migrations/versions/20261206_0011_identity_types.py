"""Identity types, type-bound blind indexes, masks that cannot be reversed, no birth dates in clear

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 00:00:00

- `listings.debtor_id_type`: `resident_id` for every person and `credit_code` for every
  organisation listed so far (the only types there were).
- Blind indexes bind the type (registry.identity.types.index_input): a resident ID number's
  input is unchanged (the bare number), so persons' listings, check logs and watchlists keep
  their values; an organisation's becomes `credit_code:<code>`, recomputed here from the
  decrypted code, and the check-log and watchlist rows that held the old value of a listed
  organisation are moved to the new one. A watched organisation that was never listed cannot
  be recomputed (the registry never kept its code): it is counted in a warning, and the bank
  must add it again.
- Public masks: a person's becomes the province and birth year (`11****1984********`),
  computed from the old mask; an organisation's code is public registration data and is
  shown in full (decrypted here).
- `listings.debtor_birth_date` becomes `debtor_birth_year`; `search_docs.birth_date` is
  dropped, and each search document's entry gets `age_at_publication` and `id_type` in
  place of the age of the day. A Meilisearch index is rebuilt by `registry search reindex`.

Decrypting needs the registry's keys (REGISTRY_DATA_KEYS and REGISTRY_BLIND_INDEX_KEY, or
the secrets file), only when organisations are listed; the migration refuses to run without
them rather than invent new ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("alembic.runtime.migration")
PURPOSE_DEBTOR_ID = b"listing.debtor_id"
PAGE = 1000


def _keys() -> tuple[Any, bytes]:
    """(the data keyring, the blind-index key), never generated here."""
    from registry.identity.crypto import DataKeyError, load_secrets
    from registry.settings import Settings

    settings = Settings()
    if not settings.keys.data_keys and not settings.keys.secrets_file.exists():
        raise DataKeyError(
            "migration 0011 decrypts organisations' credit codes: set REGISTRY_DATA_KEYS and "
            f"REGISTRY_BLIND_INDEX_KEY, or REGISTRY_SECRETS_FILE (missing: {settings.keys.secrets_file})"
        )
    secrets = load_secrets(settings)
    return secrets.keyring, secrets.blind_index_key


def _person_mask(old: str) -> str:
    # Old: number[:10] + "****" + number[14:]; new: province, then the birth year only.
    return old[:2] + "****" + old[6:10] + "*" * 8


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def upgrade() -> None:
    conn = op.get_bind()
    # Plain ALTER TABLE on both engines (SQLite >= 3.35 drops unindexed columns): no table
    # rebuild, so the foreign keys to listings and search's FTS5 table stay as they are.
    op.add_column(
        "listings",
        sa.Column("debtor_id_type", sa.String(length=32), nullable=False, server_default="resident_id"),
    )
    op.add_column("listings", sa.Column("debtor_birth_year", sa.Integer(), nullable=True))

    listings = sa.table(
        "listings",
        sa.column("id", sa.String),
        sa.column("debtor_kind", sa.String),
        sa.column("debtor_id_type", sa.String),
        sa.column("debtor_id_blind", sa.LargeBinary),
        sa.column("debtor_id_cipher", sa.LargeBinary),
        sa.column("debtor_id_masked", sa.String),
        sa.column("debtor_birth_date", sa.Date),
        sa.column("debtor_birth_year", sa.Integer),
    )
    # Persons: the type, the birth year and the mask, all from clear columns.
    moved: dict[bytes, bytes] = {}
    public: dict[str, tuple[str, str, int | None]] = {}  # listing id -> (type, mask, birth year)
    after = ""
    keys: tuple[Any, bytes] | None = None
    while True:
        rows = conn.execute(
            sa.select(
                listings.c.id,
                listings.c.debtor_kind,
                listings.c.debtor_id_blind,
                listings.c.debtor_id_cipher,
                listings.c.debtor_id_masked,
                listings.c.debtor_birth_date,
            )
            .where(listings.c.id > after)
            .order_by(listings.c.id)
            .limit(PAGE)
        ).all()
        if not rows:
            break
        after = rows[-1].id
        updates = []
        for row in rows:
            if row.debtor_kind == "person":
                birth = _as_date(row.debtor_birth_date)
                year = birth.year if birth is not None else int(row.debtor_id_masked[6:10])
                values: dict[str, Any] = {
                    "debtor_id_type": "resident_id",
                    "debtor_id_masked": _person_mask(row.debtor_id_masked),
                    "debtor_birth_year": year,
                    "debtor_id_blind": bytes(row.debtor_id_blind),
                }
            else:
                if keys is None:
                    keys = _keys()
                keyring, blind_key = keys
                code = keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode()
                blind = hmac.new(blind_key, f"credit_code:{code}".encode(), hashlib.sha256).digest()
                moved[bytes(row.debtor_id_blind)] = blind
                values = {
                    "debtor_id_type": "credit_code",
                    "debtor_id_masked": code,
                    "debtor_birth_year": None,
                    "debtor_id_blind": blind,
                }
            public[row.id] = (values["debtor_id_type"], values["debtor_id_masked"], values["debtor_birth_year"])
            updates.append({"k_id": row.id} | {f"v_{k}": v for k, v in values.items()})
        conn.execute(
            listings.update()
            .where(listings.c.id == sa.bindparam("k_id"))
            .values(
                debtor_id_type=sa.bindparam("v_debtor_id_type"),
                debtor_id_masked=sa.bindparam("v_debtor_id_masked"),
                debtor_birth_year=sa.bindparam("v_debtor_birth_year"),
                debtor_id_blind=sa.bindparam("v_debtor_id_blind"),
            ),
            updates,
        )

    # The check log and watchlists of listed organisations follow their new index.
    if moved:
        pairs = [{"old": old, "new": new} for old, new in moved.items()]
        for table in ("check_log", "watch_subjects"):
            conn.execute(
                sa.text(f"UPDATE {table} SET subject_blind = :new WHERE subject_blind = :old"),  # noqa: S608
                pairs,
            )
    known = {bytes(b) for b in conn.execute(sa.text("SELECT debtor_id_blind FROM listings")).scalars()}
    orphans = sum(
        1 for b in conn.execute(sa.text("SELECT subject_blind FROM watch_subjects")).scalars() if bytes(b) not in known
    )
    if orphans:
        # Unlisted persons keep working (their input is unchanged); an unlisted organisation's
        # old index can no longer match. Which is which cannot be told without the number.
        logger.warning(
            "%d watched subjects match no listing: persons among them keep working; organisations "
            "among them must be added again by their bank",
            orphans,
        )

    op.drop_column("listings", "debtor_birth_date")

    # Search documents: the new entry fields, no birth date.
    docs = sa.table(
        "search_docs",
        sa.column("id", sa.BigInteger),
        sa.column("listing_id", sa.String),
        sa.column("entry", sa.LargeBinary),
    )
    last = None
    stale: list[dict[str, Any]] = []
    while True:
        query = sa.select(docs.c.id, docs.c.listing_id, docs.c.entry).order_by(docs.c.id).limit(PAGE)
        if last is not None:
            query = query.where(docs.c.id > last)
        docs_page = conn.execute(query).all()
        if not docs_page:
            break
        last = docs_page[-1].id
        updates = []
        for doc in docs_page:
            try:
                entry = json.loads(bytes(doc.entry))
                published = date.fromisoformat(entry["published_on"])
                kind, masked = entry["kind"], entry["identifier_masked"]
            except (ValueError, TypeError, KeyError):
                stale.append({"k_id": doc.id})  # not an entry this code wrote: the reconcile rewrites it
                continue
            entry.pop("age", None)
            id_type, masked, birth_year = public.get(
                doc.listing_id, ("resident_id" if kind == "person" else "credit_code", masked, None)
            )
            if doc.listing_id not in public and kind == "person":
                masked = _person_mask(masked)  # a document whose listing is gone: the reconcile drops it
                digits = masked[6:10]
                birth_year = int(digits) if digits.isascii() and digits.isdigit() else None
            entry["id_type"] = id_type
            entry["identifier_masked"] = masked
            entry["age_at_publication"] = published.year - birth_year if birth_year is not None else None
            updates.append({"k_id": doc.id, "v_entry": json.dumps(entry, ensure_ascii=False).encode()})
        if updates:
            conn.execute(
                docs.update().where(docs.c.id == sa.bindparam("k_id")).values(entry=sa.bindparam("v_entry")),
                updates,
            )
    if stale:
        conn.execute(sa.text("UPDATE search_docs SET version = 0 WHERE id = :k_id"), stale)
    op.drop_column("search_docs", "birth_date")


def downgrade() -> None:
    """Lossy: the columns of 0010 come back, organisations' indexes are the bare code again
    (the keys are needed when organisations are listed), but the birth month and day and the
    old masks are not restored (persons' ages read as unknown until listed again)."""
    conn = op.get_bind()
    listings = sa.table(
        "listings",
        sa.column("id", sa.String),
        sa.column("debtor_id_type", sa.String),
        sa.column("debtor_id_blind", sa.LargeBinary),
        sa.column("debtor_id_cipher", sa.LargeBinary),
    )
    rows = conn.execute(
        sa.select(listings.c.id, listings.c.debtor_id_blind, listings.c.debtor_id_cipher).where(
            listings.c.debtor_id_type != "resident_id"
        )
    ).all()
    if rows:
        keyring, blind_key = _keys()
        pairs = []
        for row in rows:
            number = keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode()
            bare = hmac.new(blind_key, number.encode(), hashlib.sha256).digest()
            pairs.append({"k_id": row.id, "old": bytes(row.debtor_id_blind), "new": bare})
        conn.execute(sa.text("UPDATE listings SET debtor_id_blind = :new WHERE id = :k_id"), pairs)
        for table in ("check_log", "watch_subjects"):
            conn.execute(
                sa.text(f"UPDATE {table} SET subject_blind = :new WHERE subject_blind = :old"),  # noqa: S608
                [{"old": p["old"], "new": p["new"]} for p in pairs],
            )
    op.add_column("search_docs", sa.Column("birth_date", sa.Date(), nullable=True))
    op.add_column("listings", sa.Column("debtor_birth_date", sa.Date(), nullable=True))
    op.drop_column("listings", "debtor_birth_year")
    op.drop_column("listings", "debtor_id_type")
