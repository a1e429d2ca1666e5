"""PostgreSQL: the newest documents' own GIN indexes, so that a broad text is counted there first.

A text query counts up to `exact_count_limit` + 1 matches. GIN answers a phrase by decoding
and intersecting its terms' whole posting lists before the first row is read, and no LIMIT
stops that: `建筑工程` at 5,000,000 listings decoded 128,120 candidates, 35 ms of 48. Two
partial GIN indexes (terms and pinyin) over the documents at or above a floor serial, about
`recent_segment` of the newest, hold posting lists a fifth as long there; the count reads
them first and the whole indexes only for what is still missing (`EmbeddedIndex`, one
statement: the older half of the UNION ALL is never started once the newest gave enough).

The floor is a constant in each index's predicate (`id >= floor << FACET_BITS`), named in
the index, so that the planner proves a query's `id >= :recent` implies it. New documents
get the newest serials, so the part above the floor grows with the list's churn; the
maintenance job (`maintain_recent`, singleton) builds a pair at a new floor once it holds
more than twice the segment, then drops the old pair. Both are built and dropped
CONCURRENTLY: writes and reads go on meanwhile. Answers never depend on these indexes: a
query whose floor has no index (dropped since a process read it) is planned on the whole
indexes, slower and just as exact.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, text

from registry import progress

logger = logging.getLogger("search.recent")

# `search_fts` keeps them out of the drift check (migrations/env.py), like the whole indexes.
_PREFIX = "search_fts_recent_"
_NAME = re.compile(r"search_fts_recent_(terms|pinyin)_([0-9]+)", re.ASCII)
_COLUMNS = ("terms", "pinyin")
# The maintenance job's id (`search.plugin`).
JOB = "search_recent_index"

_INDEXES = (
    "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'search_docs'::regclass AND starts_with(c.relname, 'search_fts_recent_')"
)


# One maintenance at a time, whoever runs it (the singleton job, `registry search
# recent-index`): a key of its own, as the job's election holds the job's key.
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('search.recent'))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('search.recent'))"


# What a CONCURRENTLY build reports (pg_stat_progress_create_index): it scans the table
# twice, to build ("building index", with a subphase for access methods that name theirs,
# as btree; GIN names none), then to validate; the bar counts the blocks of both scans.
_BUILD_SCAN = "building index"
_VALIDATION_SCAN = "index validation: scanning table"
_SCANS = 2
_TABLE_BLOCKS = "SELECT pg_relation_size('search_docs') / current_setting('block_size')::bigint"
_SAMPLE = text("SELECT phase, blocks_done, blocks_total FROM pg_stat_progress_create_index WHERE pid = :pid")
_PROGRESS_SECONDS = 0.5


def _recent_indexes(conn: Connection) -> tuple[dict[int, set[str]], list[str]]:
    """(floor serial -> the columns with a valid index at that floor, names of invalid
    indexes: a CONCURRENTLY build that failed leaves one, which no query uses)."""
    valid: dict[int, set[str]] = {}
    invalid: list[str] = []
    for name, is_valid in conn.exec_driver_sql(_INDEXES):
        found = _NAME.fullmatch(name)
        if found is None:
            continue
        if not is_valid:
            invalid.append(name)
            continue
        valid.setdefault(int(found.group(2)), set()).add(found.group(1))
    return valid, invalid


def recent_floor(conn: Connection) -> int | None:
    """The highest floor serial with both of its indexes valid, or None (no such pair:
    then every query counts on the whole indexes, as before there were any)."""
    valid, _ = _recent_indexes(conn)
    return _complete_floor(valid)


def _complete_floor(valid: dict[int, set[str]]) -> int | None:
    return max((floor for floor, columns in valid.items() if columns == set(_COLUMNS)), default=None)


def _index_name(column: str, floor: int) -> str:
    return f"{_PREFIX}{column}_{floor}"


def maintain_recent(conn: Connection, newest: int, segment: int, facet_bits: int) -> dict[str, Any]:
    """Build a pair of indexes at `newest - segment` (serials; an id is its serial shifted
    left by `facet_bits`) when there is none and the list holds more than twice the segment,
    or when the current pair covers more than twice the segment; then drop every other pair
    and any invalid leftover (every pair, when the list holds no more than twice the segment).
    `conn`: PostgreSQL, autocommit (CREATE and DROP INDEX CONCURRENTLY cannot run in a
    transaction). Returns what it found and did ("busy": another session is at it, and an
    index it is building would look invalid here, so nothing is done)."""
    if not conn.exec_driver_sql(_TRY_LOCK).scalar():
        return {"floor": recent_floor(conn), "created": False, "dropped": 0, "busy": True}
    try:
        return _maintain(conn, newest, segment, facet_bits)
    finally:
        conn.exec_driver_sql(_UNLOCK)


def _maintain(conn: Connection, newest: int, segment: int, facet_bits: int) -> dict[str, Any]:
    valid, invalid = _recent_indexes(conn)
    for name in invalid:
        conn.exec_driver_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    floor = _complete_floor(valid)
    created = False
    if newest <= 2 * segment:
        # The whole indexes are short enough (or the segment was set larger): no pair.
        floor = None
    elif floor is None or newest - floor > 2 * segment:
        floor = newest - segment
        with _builds_reported(conn, len(_COLUMNS)):
            for column in _COLUMNS:
                # Our own names and integers: the only text spliced into this statement.
                conn.exec_driver_sql(
                    f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{_index_name(column, floor)}" '
                    f"ON search_docs USING gin ({column}) WHERE id >= {floor << facet_bits}"
                )
        created = True
        logger.info("search: the newest documents' own indexes built from serial %d", floor)
    dropped = len(invalid)
    for other, columns in valid.items():
        if other != floor:
            for column in columns:
                conn.exec_driver_sql(f'DROP INDEX CONCURRENTLY IF EXISTS "{_index_name(column, other)}"')
                dropped += 1
    return {"floor": floor, "created": created, "dropped": dropped}


class ScanTally:
    """Table blocks scanned so far by a run of CONCURRENTLY builds, from samples of their
    progress (phase, blocks done, blocks of this scan): a scan is over when the phase moves
    on or its count starts again (the next build's)."""

    def __init__(self) -> None:
        self.finished = 0
        self._phase: str | None = None
        self._done = 0
        self._total = 0

    def observe(self, phase: str | None, done: int, total: int) -> int:
        if self._phase is not None and (phase != self._phase or done < self._done):
            self.finished += self._total
            self._phase, self._done = None, 0
        if phase is not None and (phase.startswith(_BUILD_SCAN) or phase == _VALIDATION_SCAN):
            self._phase, self._done, self._total = phase, done, total
        return self.finished + self._done


@contextmanager
def _builds_reported(conn: Connection, builds: int) -> Iterator[None]:
    """While the block runs `builds` CONCURRENTLY builds on `conn`, advance the command's
    progress bar by the blocks they scan (read every half second on a connection of its
    own, in autocommit: a transaction held open would make the builds wait for it). The
    scheduler's job has no bar and starts nothing."""
    if not progress.shown():
        yield
        return
    total = builds * _SCANS * int(conn.exec_driver_sql(_TABLE_BLOCKS).scalar_one())
    pid = int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
    stop = threading.Event()
    reported = 0

    def watch() -> None:
        nonlocal reported
        tally = ScanTally()
        with conn.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:
            while not stop.wait(_PROGRESS_SECONDS):
                row = watcher.execute(_SAMPLE, {"pid": pid}).first()
                # No row: between the builds.
                scanned = min(total, tally.observe(*(row or (None, 0, 0))))
                if scanned > reported:
                    progress.advance(scanned - reported)
                    reported = scanned

    with progress.task("building the newest documents' indexes", total):
        # The bar lives in this context: the thread runs in a copy of it.
        thread = threading.Thread(target=contextvars.copy_context().run, args=(watch,), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        progress.advance(total - reported)
