from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from registry.db import Base
from registry.timeutil import UtcDateTime


class Event(Base):
    """One change, in the order every reader follows; also the hash-linked audit trail.

    `seq` is handed out under the lock on `log_head`, so it is gap-free and a reader that
    has seen N has seen everything below N. `data` never holds a personal identifier.
    """

    __tablename__ = "events"

    # INTEGER on SQLite makes seq the rowid itself, sparing a second B-tree on every append.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(64))
    court_code: Mapped[str | None] = mapped_column(String(16))
    listing_id: Mapped[str | None] = mapped_column(String(32), index=True)
    listing_version: Mapped[int | None] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogHead(Base):
    """The single row appenders lock: last sequence number and last hash of the chain."""

    __tablename__ = "log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ReaderCursor(Base):
    """How far one reader of the log (the search indexer, a checkpointer, ...) has done its work."""

    __tablename__ = "reader_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class JobRun(Base):
    """When a singleton job last started, in whichever process: the workers' schedules drift
    apart, and the one elected a moment after another's run must skip it, not run it again."""

    __tablename__ = "job_runs"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
