"""Catching the log up on a large backlog, such as the first checkpoint of a registry that
already holds a million events.

Computing a leaf (canonical JSON of the event, two SHA-256) costs about three times what
storing it does, so the commitments of consecutive ranges of the event log are computed by
one process per core, each reading its range itself, while this process stores them in
order, one transaction per range, exactly as `append_leaves` would have.
"""

from __future__ import annotations

from contextlib import closing

from sqlalchemy import Engine, func, select

from registry.eventlog.cursors import cursor_position
from registry.eventlog.models import Event
from registry.readerpool import in_order, worker_reader
from registry.translog.services import (
    CURSOR_NAME,
    Commitment,
    commitments,
    lock_appends,
    read_events,
    store_leaves,
)

# Below this backlog the pool's start (a second or two) costs more than it saves.
PARALLEL_BACKLOG = 100_000
RANGE_EVENTS = 10_000


def _commit_range(after: int, upto: int) -> list[Commitment]:
    with worker_reader().connect() as conn:
        return commitments(read_events(conn, after, upto=upto))


def catch_up(
    engine: Engine,
    database_url: str,
    workers: int,
    *,
    min_backlog: int = PARALLEL_BACKLOG,
    range_events: int = RANGE_EVENTS,
) -> int:
    """Log the backlog in parallel when it is large; returns how many events it covered
    (0: left to `append_leaves`). Stops early, harmlessly, if another appender moves the
    cursor meanwhile: what remains is then left to `append_leaves` too."""
    with engine.connect() as conn:
        start = cursor_position(conn, CURSOR_NAME)
        head = conn.execute(select(func.max(Event.seq))).scalar() or 0
    if workers < 2 or head - start < min_backlog:
        return 0
    ranges = [(lo, min(lo + range_events, head)) for lo in range(start, head, range_events)]
    covered = start
    with closing(in_order(_commit_range, ranges, database_url, workers)) as computed_ranges:
        for (after, upto), computed in zip(ranges, computed_ranges, strict=True):
            with engine.begin() as conn:
                lock_appends(conn)
                if cursor_position(conn, CURSOR_NAME) != after:
                    break
                store_leaves(conn, computed, upto)
            covered = upto
    return covered - start
