"""Reading the event log: one primitive for every reader (search, feeds, watchlists, notices,
the transparency log), so that none writes its own cursor, lock or batching.

A reader has a named cursor in `reader_cursors`, the position up to which it has done its
work. `step` runs one batch in the caller's write transaction: claim the cursor, read the
events above it, let the reader process them, advance the cursor. What that guarantees:

- Gap-free. An append locks `log_head` until it commits (`registry.eventlog.services`), so
  sequence numbers are handed out in commit order, one after another: once the head reads
  N, every event up to N has committed, and none can later appear below N. A batch is
  bounded by the head it read, so a reader never moves past an event that was still to
  commit.
- At-least-once. The cursor moves in the same transaction as the reader's own writes: both
  commit or neither does. After a crash or a rollback the events are processed again, never
  lost, so `process` must be idempotent (by listing and version, or by event seq).
- One at a time. `claim_cursor` holds the cursor row until the transaction ends (SELECT …
  FOR UPDATE on PostgreSQL; on SQLite a writer holds the whole database from BEGIN
  IMMEDIATE, see `registry.db`). A second process running the same reader waits, then
  starts where the first stopped: no event is processed by two at once. Work that must not
  interleave with a reader (the search reindex) claims the same cursor. A reader with
  `prepare` (the search follower, the statistics) does its batch's heavy work before the claim
  (`step_prepared`): two processes may prepare the same batch, and only the one that finds
  the cursor where it read it applies it.

Adding a reader: a module in its own package with its `process` function and its
`LogReader`, and a `follow_job` line in that package's plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import msgspec
from sqlalchemy import Connection, Engine, select, update

from registry.db import Database, dialect_insert
from registry.eventlog.models import Event, ReaderCursor
from registry.eventlog.services import head
from registry.timeutil import utcnow


class LogEvent(msgspec.Struct, frozen=True):
    """One event of the log. `type` is an `EventType` value, as stored (a plain string that
    compares equal to the enum member)."""

    seq: int
    occurred_at: datetime
    type: str
    actor: str
    court_code: str | None
    listing_id: str | None
    listing_version: int | None
    data: dict[str, Any]
    hash: bytes  # the chain hash, for the admin API and the transparency log's commitments


# In LogEvent's field order, so that a row is the struct's arguments as they come.
EVENT_COLUMNS = (
    Event.seq,
    Event.occurred_at,
    Event.type,
    Event.actor,
    Event.court_code,
    Event.listing_id,
    Event.listing_version,
    Event.data,
    Event.hash,
)
_EVENTS = select(*EVENT_COLUMNS)


def read_events(
    conn: Connection,
    after: int,
    limit: int | None,
    types: Collection[str] | None = None,
    *,
    upto: int | None = None,
) -> list[LogEvent]:
    """Events with seq above `after` (and at most `upto`), of `types` (None: every type),
    oldest first, at most `limit` of them (None: no limit)."""
    query = _EVENTS.where(Event.seq > after).order_by(Event.seq).limit(limit)
    if upto is not None:
        query = query.where(Event.seq <= upto)
    if types is not None:
        query = query.where(Event.type.in_(sorted(types)))
    return [LogEvent(*row) for row in conn.execute(query)]


def claim_cursor(conn: Connection, name: str) -> int:
    """The position of cursor `name`, held for the rest of the transaction; a missing cursor
    is created at 0. Run it in a write transaction, before reading the events."""
    locked = select(ReaderCursor.position).where(ReaderCursor.name == name).with_for_update()
    position = conn.execute(locked).scalar()
    if position is None:
        # Two processes may create it at once: the loser's insert waits for the winner's
        # commit and does nothing; both then lock the one row.
        conn.execute(
            dialect_insert(conn, ReaderCursor)
            .values(name=name, position=0, updated_at=utcnow())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        position = conn.execute(locked).scalar_one()
    return int(position)


def cursor_position(conn: Connection, name: str) -> int:
    """Where cursor `name` stands (0 when it does not exist yet), without claiming it."""
    return int(conn.execute(select(ReaderCursor.position).where(ReaderCursor.name == name)).scalar() or 0)


def listings_changed_since(conn: Connection, position: int) -> set[str]:
    """The listings named by events above `position`: what a reader at that position has yet
    to take (a range of the primary key: a reader a few seconds behind reads a few rows)."""
    query = select(Event.listing_id).where(Event.seq > position, Event.listing_id.is_not(None)).distinct()
    return {listing_id for listing_id in conn.execute(query).scalars() if listing_id is not None}


def advance(conn: Connection, name: str, position: int, now: datetime | None = None) -> None:
    """Move the claimed cursor `name` to `position` (backwards too: a rebuild replays)."""
    conn.execute(
        update(ReaderCursor)
        .where(ReaderCursor.name == name)
        .values(position=position, updated_at=now or utcnow())
    )


# A reader's work for a batch of events (in log order), in the caller's transaction.
Process = Callable[[Connection, Sequence[LogEvent], datetime], None]
# Work a reader does on a read connection before it claims its cursor, with no lock held:
# given the batch's events, the `Process` to run under the claim. That `Process` must check
# what it was given against the rows as they stand then (they may have changed meanwhile).
Prepare = Callable[[Connection, Sequence[LogEvent]], Process]


@dataclass(frozen=True)
class LogReader:
    """`name`: its cursor in `reader_cursors`; `types`: the event types it reads (None: every
    type; the others are passed over in the database); `batch`: log events per transaction
    at most (those passed over count too), what one `step` holds the writer for.
    `prepare`: when set, the scheduler's job (`follow`) does most of the batch's work before
    the write transaction (`step_prepared`), and `process` serves commands and tests."""

    name: str
    process: Process
    types: Collection[str] | None = None
    batch: int = 1000
    prepare: Prepare | None = None


def _next_batch(conn: Connection, reader: LogReader, position: int) -> tuple[int, list[LogEvent]]:
    """Where the reader's next batch from `position` ends, and its events (of the reader's
    types). Sequence numbers have no gaps, so the next `batch` events are a range of seq:
    bounded by it (not by a LIMIT after the type filter), every read is an index range
    scan, whatever the planner guesses of the types."""
    last_seq, _ = head(conn)
    reached = min(position + reader.batch, last_seq)
    if reached <= position:
        return position, []
    return reached, read_events(conn, position, None, reader.types, upto=reached)


def step(conn: Connection, reader: LogReader, now: datetime) -> int:
    """One batch of `reader` in the caller's write transaction; returns how many log events
    it read past (fewer than `reader.batch`: the reader has caught up with the log)."""
    position = claim_cursor(conn, reader.name)
    reached, events = _next_batch(conn, reader, position)
    if reached <= position:
        return 0
    if events:
        reader.process(conn, events, now)
    advance(conn, reader.name, reached, now)
    return reached - position


async def follow(db: Database, reader: LogReader) -> int:
    """The scheduler job of a reader: catch it up with the log, one write transaction per
    batch on the service's synchronous writer, in a worker thread, as a background writer
    (on SQLite, interactive writes waiting for their turn go first: `registry.writequeue`);
    returns how many log events it read past.

    Not on the event loop: a reader's `process` is Python work of tens to hundreds of
    milliseconds a batch while a batch of listings is ingested (the statistics, the notices,
    the transparency log), and on the loop every request waited for all of it. In a thread
    the loop runs between the interpreter's switches."""
    if reader.prepare is not None:
        return await anyio.to_thread.run_sync(follow_prepared_sync, db.sync_writer, db.sync_reader, reader)
    return await anyio.to_thread.run_sync(follow_sync, db.sync_writer, reader)


def follow_sync(engine: Engine, reader: LogReader) -> int:
    """`follow` on a synchronous writer engine (BEGIN IMMEDIATE on SQLite): for a reader
    whose work blocks (a network client), run in a worker thread, and for commands."""
    total = 0
    while True:
        with engine.begin() as conn:
            processed = step(conn, reader, utcnow())
        total += processed
        if processed < reader.batch:
            return total


def step_prepared(writer: Engine, reader_engine: Engine, reader: LogReader, now: datetime) -> int | None:
    """`step` in two transactions, for a reader with `prepare`: the events above the cursor
    are read and prepared on `reader_engine` without the claim (on SQLite without the write
    lock, so the writers of listings go on meanwhile), then applied under the claim in a
    short write transaction. Returns how many log events it read past, or None when the
    cursor moved in between (another process's step, a rebuild): nothing was applied, and
    the next step reads from where the cursor stands."""
    assert reader.prepare is not None
    with reader_engine.connect() as conn:
        position = cursor_position(conn, reader.name)
        reached, events = _next_batch(conn, reader, position)
        if reached <= position:
            return 0
        process = reader.prepare(conn, events) if events else None
    with writer.begin() as conn:
        if claim_cursor(conn, reader.name) != position:
            return None
        if process is not None:
            process(conn, events, now)
        advance(conn, reader.name, reached, now)
    return reached - position


def follow_prepared_sync(writer: Engine, reader_engine: Engine, reader: LogReader) -> int:
    """`follow_sync` for a reader with `prepare`, by `step_prepared`."""
    total = 0
    while True:
        processed = step_prepared(writer, reader_engine, reader, utcnow())
        if processed is None:
            continue
        total += processed
        if processed < reader.batch:
            return total
