"""Catching the log up on a large backlog, such as the first checkpoint of a registry that
already holds a million events.

Computing a leaf (canonical JSON of the event, two SHA-256) costs about three times what
storing it does, so the commitments of consecutive ranges of the event log are computed by
one process per core, each reading its range itself, while this process stores them in
order, one transaction per range, exactly as the log's reader (`READER`) would have.
"""

from __future__ import annotations

from contextlib import closing

from sqlalchemy import Engine, select

from registry import progress
from registry.eventlog.models import ReaderCursor
from registry.eventlog.readers import advance, claim_cursor, read_events
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS
from registry.readerpool import in_order, worker_reader
from registry.translog.services import CURSOR_NAME, Commitment, commitments, store_leaves

# Below this backlog the pool's start (a second or two) costs more than it saves.
PARALLEL_BACKLOG = 100_000
RANGE_EVENTS = 10_000


def _commit_range(after: int, upto: int) -> list[Commitment]:
    with worker_reader().connect() as conn:
        return commitments(read_events(conn, after, None, LISTING_EVENTS, upto=upto))


def backlog(engine: Engine) -> int:
    """Log events not yet in the tree (events of every type: the bar's total, an upper bound)."""
    with engine.connect() as conn:
        position = conn.execute(
            select(ReaderCursor.position).where(ReaderCursor.name == CURSOR_NAME)
        ).scalar()
        return head(conn)[0] - int(position or 0)


def catch_up(
    engine: Engine,
    database_url: str,
    workers: int,
    *,
    min_backlog: int = PARALLEL_BACKLOG,
    range_events: int = RANGE_EVENTS,
) -> int:
    """Log the backlog in parallel when it is large; returns how many events it covered
    (0: left to the reader). Stops early, harmlessly, if the reader moves the cursor
    meanwhile: what remains is then left to it too."""
    with engine.begin() as conn:
        start = claim_cursor(conn, CURSOR_NAME)
        last_seq, _ = head(conn)
    if workers < 2 or last_seq - start < min_backlog:
        return 0
    ranges = [(lo, min(lo + range_events, last_seq)) for lo in range(start, last_seq, range_events)]
    covered = start
    with closing(in_order(_commit_range, ranges, database_url, workers)) as computed_ranges:
        for (after, upto), computed in zip(ranges, computed_ranges, strict=True):
            with engine.begin() as conn:
                if claim_cursor(conn, CURSOR_NAME) != after:
                    break
                store_leaves(conn, computed)
                advance(conn, CURSOR_NAME, upto)
            covered = upto
            progress.advance(upto - after)
    return covered - start
