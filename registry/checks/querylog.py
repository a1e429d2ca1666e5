"""The query log: retention purge and the admin export. Rows are written by
`services.run_check`, in the check's own transaction."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select

from registry.checks.models import CheckLogEntry, CheckUsage
from registry.clients.models import ApiClient
from registry.csvsafe import DictWriter
from registry.timeutil import iso

EXPORT_FIELDS = (
    "checked_at",
    "check_id",
    "purpose",
    "reference",
    "subject_index",
    "subject_hash",
    "result",
    "listings",
    "name_mismatch",
    "error",
)
PURGE_CHUNK = 10_000


def is_bank(conn: Connection, client_id: str) -> bool:
    """Whether a bank has (or had: a revoked bank's log stays open to oversight) this id."""
    role = conn.execute(select(ApiClient.role).where(ApiClient.id == client_id)).scalar()
    return role == "bank"


def purge(conn: Connection, now: datetime, retention_days: int, today: date) -> int:
    """Delete one chunk of log rows older than the retention period; returns how many.
    Daily usage counters older than yesterday go too (they only serve today's quota)."""
    cutoff = now - timedelta(days=retention_days)
    doomed = (
        select(CheckLogEntry.id).where(CheckLogEntry.checked_at < cutoff).limit(PURGE_CHUNK).scalar_subquery()
    )
    deleted = conn.execute(delete(CheckLogEntry).where(CheckLogEntry.id.in_(doomed))).rowcount
    conn.execute(delete(CheckUsage).where(CheckUsage.day < today - timedelta(days=1)))
    return int(deleted)


def export_page(
    conn: Connection, client_id: str, start: datetime, end: datetime, after_id: int, limit: int
) -> list[dict[str, Any]]:
    """One page of a bank's log in [start, end), in order; the subject is the blind index
    (hex): an admin finds a person's checks by computing it, nobody reads a number back."""
    rows = conn.execute(
        select(CheckLogEntry)
        .where(
            CheckLogEntry.client_id == client_id,
            CheckLogEntry.checked_at >= start,
            CheckLogEntry.checked_at < end,
            CheckLogEntry.id > after_id,
        )
        .order_by(CheckLogEntry.id)
        .limit(limit)
    )
    return [
        {
            "id": row.id,
            "checked_at": iso(row.checked_at),
            "check_id": row.check_id,
            "purpose": row.purpose,
            "reference": row.reference,
            "subject_index": row.subject_index,
            "subject_hash": bytes(row.subject_blind).hex(),
            "result": row.result,
            "listings": row.listings,
            "name_mismatch": row.name_mismatch,
            "error": row.error,
        }
        for row in rows
    ]


def csv_lines(rows: Iterable[dict[str, Any]], header: bool) -> str:
    buffer = io.StringIO()
    # A bank's `reference` is its own text: neutralised like every CSV cell (registry.csvsafe).
    writer = DictWriter(buffer, EXPORT_FIELDS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
