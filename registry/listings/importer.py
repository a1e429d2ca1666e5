"""Bulk import of signed envelopes from a JSON-lines file (`registry import`).

Chunks of lines go to worker processes that parse, prepare and store them, writing in
file order (see `ingest.py`); this process only reads the file and tallies results. At most
`2 x workers` chunks are in flight, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection

from registry.listings.ingest import (
    STALL_CHECK_SECONDS,
    IngestStalled,
    new_pool,
    store_envelopes,
)
from registry.listings.schemas import IngestResult
from registry.listings.services import load_context
from registry.readerpool import kill_workers, shutdown_within
from registry.runtime import Services
from registry.timeutil import utcnow

IMPORT_ACTOR = "operator:import"


@dataclass
class ImportReport:
    lines: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # (line number, problem code, pointer): never the content of the line
    first_errors: list[tuple[int, str, str | None]] = field(default_factory=list)

    def add(self, line_numbers: list[int], results: list[IngestResult]) -> None:
        for number, result in zip(line_numbers, results, strict=True):
            self.outcomes[result.outcome] += 1
            if result.problem is not None and len(self.first_errors) < 20:
                self.first_errors.append((number, result.problem["code"], result.problem.get("pointer")))
        self.lines += len(results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "created": self.outcomes["created"],
            "unchanged": self.outcomes["unchanged"],
            "rejected": self.outcomes["rejected"],
            "first_errors": [{"line": n, "code": c, "pointer": p} for n, c, p in self.first_errors],
        }


def _chunks(handle: BinaryIO, size: int) -> Iterator[tuple[list[int], list[bytes]]]:
    """Chunks of non-blank lines, with each line's number in the file (for error reports)."""
    numbers: list[int] = []
    chunk: list[bytes] = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        numbers.append(number)
        chunk.append(line)
        if len(chunk) == size:
            yield numbers, chunk
            numbers, chunk = [], []
    if chunk:
        yield numbers, chunk


async def import_file(
    services: Services,
    path: Path,
    *,
    workers: int,
    chunk_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    context = await services.db.read(load_context, services.secrets, utcnow())
    report = ImportReport()
    loop = asyncio.get_running_loop()
    pool = new_pool(workers, services.db.url, context, niceness=services.settings.listings.ingest_niceness)
    in_flight: deque[tuple[list[int], asyncio.Future[list[IngestResult]]]] = deque()

    stall_seconds = services.settings.listings.ingest_stall_seconds
    settled_at = [time.monotonic()]

    async def settle_oldest() -> None:
        line_numbers, future = in_flight[0]
        # The oldest chunk holds the turn to write: if it does not finish, nothing will.
        while not future.done():
            await asyncio.wait([future], timeout=min(STALL_CHECK_SECONDS, stall_seconds))
            if not future.done() and time.monotonic() - settled_at[0] > stall_seconds:
                kill_workers(pool)
                raise IngestStalled(stall_seconds)
        in_flight.popleft()
        settled_at[0] = time.monotonic()
        results = future.result()
        report.add(line_numbers, results)
        if on_progress is not None:
            on_progress(len(results))

    try:
        with path.open("rb") as handle:
            for ticket, (line_numbers, chunk) in enumerate(_chunks(handle, chunk_size)):
                future = loop.run_in_executor(pool, store_envelopes, ticket, None, chunk, IMPORT_ACTOR, None)
                in_flight.append((line_numbers, future))
                if len(in_flight) >= 2 * workers:
                    await settle_oldest()
            while in_flight:
                await settle_oldest()
    except BaseException:
        # Interrupted: drop what has not started; what has, finishes on its own.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    shutdown_within(pool, stall_seconds)
    if not services.db.is_sqlite and report.outcomes["created"]:
        await services.db.write(analyze_if_grown, report.outcomes["created"])
    return report


# The tables an import grows, and by how much (a share of their rows) it must have grown
# them to analyze them itself: autovacuum's default threshold for analyzing.
_GROWN_TABLES = ("listings", "listing_versions", "events")
ANALYZE_SHARE = 0.1


def analyze_if_grown(conn: Connection, created: int) -> bool:
    """PostgreSQL: `ANALYZE` the tables an import grew when it added a tenth of the list or
    more. Autovacuum analyzes new rows only after its throttled vacuum of them (tens of
    minutes for millions), and until then the planner has no statistics: on a bulk-loaded
    list of 5,000,000 each ingest chunk's lookup of known submissions read
    `listing_versions` whole (docs/benchmarks.md). A daily import of thousands into
    millions does not ask for it. Returns whether it analyzed."""
    # reltuples: -1 when the table was never analyzed, the estimate otherwise.
    known = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'listings'").scalar()
    if known is not None and known >= 0 and created < ANALYZE_SHARE * known:
        return False
    for table in _GROWN_TABLES:
        conn.exec_driver_sql(f"ANALYZE {table}")
    return True
