"""Inserts and upserts straight to the driver (registry/bulk.py), as the log readers use them:
on the synchronous engine (sqlite3, psycopg) and on the service's async engine (aiosqlite,
and asyncpg, which takes SQLAlchemy's own statement)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import psycopg
import pytest
import sqlalchemy as sa

from registry.bulk import bulk_insert
from registry.db import Database
from registry.eventlog.models import ReaderCursor
from registry.settings import Settings

CURSORS = cast(sa.Table, ReaderCursor.__table__)
FIRST = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
LATER = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _run(way: str, settings: Settings, engine: sa.Engine, work: Callable[[sa.Connection], Any]) -> None:
    if way == "sync":
        with engine.begin() as conn:
            work(conn)
        return

    async def through_the_service() -> None:
        db = Database(settings.database.url)
        try:
            await db.write(work)
        finally:
            await db.dispose()

    asyncio.run(through_the_service())


def _cursors(engine: sa.Engine) -> dict[str, tuple[int, datetime]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ReaderCursor.name, ReaderCursor.position, ReaderCursor.updated_at))
        return {row.name: (row.position, row.updated_at) for row in rows if row.name.startswith("t.")}


@pytest.mark.parametrize("way", ["sync", "async"])
def test_upserts_add_to_or_replace_only_the_columns_named(
    way: str, settings: Settings, engine: sa.Engine
) -> None:
    def rows(position: int, at: datetime) -> list[dict[str, Any]]:
        return [
            {"name": "t.a", "position": position, "updated_at": at},
            {"name": "t.b", "position": 2 * position, "updated_at": at},
        ]

    def added(position: int, at: datetime) -> Callable[[sa.Connection], None]:
        return lambda conn: bulk_insert(
            conn, CURSORS, rows(position, at), on_conflict=["name"], update=["position"], add=True
        )

    _run(way, settings, engine, added(5, FIRST))
    _run(way, settings, engine, added(5, LATER))
    # Added to the stored counts; the column not named kept its first value.
    assert _cursors(engine) == {"t.a": (10, FIRST), "t.b": (20, FIRST)}

    def replaced(conn: sa.Connection) -> None:
        bulk_insert(conn, CURSORS, rows(3, LATER), on_conflict=["name"], update=["position", "updated_at"])

    _run(way, settings, engine, replaced)
    assert _cursors(engine) == {"t.a": (3, LATER), "t.b": (6, LATER)}


@pytest.mark.parametrize("way", ["sync", "async"])
def test_a_plain_insert_still_refuses_a_taken_key(way: str, settings: Settings, engine: sa.Engine) -> None:
    row = [{"name": "t.a", "position": 1, "updated_at": FIRST}]
    _run(way, settings, engine, lambda conn: bulk_insert(conn, CURSORS, row))
    # The driver's own error on its path (as every bulk insert has raised), SQLAlchemy's on
    # asyncpg's.
    with pytest.raises((sa.exc.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)):
        _run(way, settings, engine, lambda conn: bulk_insert(conn, CURSORS, row))
    assert _cursors(engine) == {"t.a": (1, FIRST)}
