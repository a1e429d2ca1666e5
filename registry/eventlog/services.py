"""The append-only event log, which is also the hash-linked audit trail.

Appending locks the single `log_head` row (FOR UPDATE on PostgreSQL; SQLite writers hold
the database lock from BEGIN IMMEDIATE) and keeps it until commit. Sequence numbers are
therefore handed out in commit order: a reader that has read up to N can never later
find a committed event below N. A plain sequence would not give that guarantee.

Lock order: every writer that changes listings takes the log head first (`lock_head`), then
the rows it changes. One order everywhere, or two writers can deadlock on PostgreSQL.

Every writer that changes a listing appends an event naming it, in the same transaction: so
the listings changed since a reader saw the head at seq N are those that events after N name
(`listings_named_after`), which lets a writer check before it takes the lock and verify after.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update

from registry.bulk import bulk_insert
from registry.eventlog.models import Event, LogHead
from registry.eventlog.types import EventType
from registry.eventlog.wake import mark_appended
from registry.identity.canonical import canonical_json
from registry.timeutil import iso

GENESIS_HASH = bytes(32)
HEAD_ID = 1


@dataclass
class EventDraft:
    type: EventType
    actor: str
    court_code: str | None = None
    listing_id: str | None = None
    listing_version: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


def event_hash(
    prev_hash: bytes,
    *,
    seq: int,
    occurred_at: datetime,
    type: str,
    actor: str,
    court_code: str | None,
    listing_id: str | None,
    listing_version: int | None,
    data: dict[str, Any],
) -> bytes:
    body = canonical_json(
        {
            "seq": seq,
            "occurred_at": iso(occurred_at),
            "type": type,
            "actor": actor,
            "court_code": court_code,
            "listing_id": listing_id,
            "listing_version": listing_version,
            "data": data,
        }
    )
    return hashlib.sha256(prev_hash + body).digest()


def lock_head(conn: Connection) -> tuple[int, bytes]:
    """Take the appenders' lock for the rest of the transaction; returns (last seq, last hash).

    Writers that must check before they append (duplicates, re-listing rules) take it
    first, so that no other writer can commit in between.
    """
    head = conn.execute(
        select(LogHead.last_seq, LogHead.last_hash).where(LogHead.id == HEAD_ID).with_for_update()
    ).one()
    return int(head.last_seq), bytes(head.last_hash)


def append_events(conn: Connection, drafts: Sequence[EventDraft], now: datetime) -> list[int]:
    """Append in the caller's transaction; returns the sequence numbers given."""
    if not drafts:
        return []
    mark_appended(conn)  # its commit wakes the followers (registry.eventlog.wake)
    seq, prev = lock_head(conn)
    rows: list[dict[str, Any]] = []
    for draft in drafts:
        seq += 1
        # The plain string: the canonical JSON fast path takes exact str only.
        type_name = draft.type.value
        digest = event_hash(
            prev,
            seq=seq,
            occurred_at=now,
            type=type_name,
            actor=draft.actor,
            court_code=draft.court_code,
            listing_id=draft.listing_id,
            listing_version=draft.listing_version,
            data=draft.data,
        )
        rows.append(
            {
                "seq": seq,
                "occurred_at": now,
                "type": type_name,
                "actor": draft.actor,
                "court_code": draft.court_code,
                "listing_id": draft.listing_id,
                "listing_version": draft.listing_version,
                "data": draft.data,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    bulk_insert(conn, cast(Table, Event.__table__), rows)
    conn.execute(update(LogHead).where(LogHead.id == HEAD_ID).values(last_seq=seq, last_hash=prev))
    return [row["seq"] for row in rows]


def listings_named_after(conn: Connection, seq: int, limit: int) -> list[str] | None:
    """The listings that events after `seq` name, or None when there are more than `limit`."""
    named = conn.execute(
        select(Event.listing_id)
        .where(Event.seq > seq, Event.listing_id.is_not(None))
        .distinct()
        .limit(limit + 1)
    ).scalars()
    listing_ids = [listing_id for listing_id in named if listing_id is not None]
    return None if len(listing_ids) > limit else listing_ids


def head(conn: Connection) -> tuple[int, bytes]:
    row = conn.execute(select(LogHead.last_seq, LogHead.last_hash).where(LogHead.id == HEAD_ID)).one()
    return int(row.last_seq), bytes(row.last_hash)
