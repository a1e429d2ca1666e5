"""Named positions in the event log, one per reader, moved after the reader's work is done.

A reader processes events above its position, then advances it in the same transaction
as its own writes where it has any: at-least-once, never skipping a committed event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from registry.eventlog.models import ReaderCursor
from registry.timeutil import utcnow


def cursor_position(conn: Connection, name: str) -> int:
    position = conn.execute(select(ReaderCursor.position).where(ReaderCursor.name == name)).scalar()
    return int(position) if position is not None else 0


def set_cursor(conn: Connection, name: str, position: int, now: datetime | None = None) -> None:
    """Moves the cursor to `position` (backwards too: a rebuild or replay starts over)."""
    now = now or utcnow()
    changed = conn.execute(
        update(ReaderCursor).where(ReaderCursor.name == name).values(position=position, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(insert(ReaderCursor).values(name=name, position=position, updated_at=now))
