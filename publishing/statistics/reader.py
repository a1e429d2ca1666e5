"""The reader of the event log that keeps the statistics (`registry.eventlog.readers`).

For each listing an event touches, the reader reads the listing as it stands, takes what it
had counted of it (`statistics_facts`) out of the counts and puts the listing's present
contribution in: the counts are always the count over the listings as they stand (an
amendment that moves the listing day or changes the grounds moves its counts), and a batch
read twice, or events read late, give the same counts. The counts move in the same
transaction as the cursor.

A listing counts as listed on its `listed_on` (the court's date, not the day it reached the
registry, so that an import of old listings lands in the months they were decided), and as
removed on the removal's `effective_on` (the listing's `removed_on`; a term expiry: the
term's last day).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, Table, delete, func, select, text

from publishing.statistics.models import (
    COUNT_COLUMNS,
    GRAINS,
    STATISTICS_COUNTS,
    TOTAL_START,
    StatisticsFact,
)
from registry.bulk import DriverRows, driver_rows, insert_driver_rows
from registry.eventlog.readers import LogEvent, LogReader, Process, advance, claim_cursor
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS
from registry.listings.models import Listing, Removal
from registry.listings.schemas import GROUNDS

CURSOR = "statistics"
# The scheduler job that runs this reader (`publishing.statistics.plugin`).
JOB = "statistics"
FACTS = cast(Table, StatisticsFact.__table__)
_INDEX = {name: index for index, name in enumerate(COUNT_COLUMNS)}
_CHUNK = 500


class Fact(NamedTuple):
    court_code: str
    province_code: str
    debtor_kind: str
    special_subject: str
    listed_on: date
    grounds: str
    removed_on: date | None
    removal_reason: str | None
    on_time: bool | None


def month_start(day: date) -> date:
    return day.replace(day=1)


def year_start(day: date) -> date:
    return day.replace(month=1, day=1)


# (grain, period_start, area, debtor_kind, special_subject, province_code) -> count deltas
Key = tuple[str, date, str, str, str, str]


# A count row's key columns, in `Key`'s order.
KEY_FIELDS = ("grain", "period_start", "area", "debtor_kind", "special_subject", "province_code")


def count_row(key: Key, values: list[int]) -> dict[str, Any]:
    """One `statistics_counts` row: its key's columns and its counts."""
    return dict(zip((*KEY_FIELDS, *COUNT_COLUMNS), (*key, *values), strict=True))


def _add(deltas: dict[Key, list[int]], fact: Fact, sign: int) -> None:
    """Add (sign +1) or take out (-1) one listing's counts: at the province and court grains,
    and at the special grains as well (`q…` by province, `s…` by court, a listing that is no
    special subject at `q…` only, under ''), so that the common figures never carry the
    special-subject dimension."""
    # (province family, court family or None, special subject)
    families: list[tuple[str, str | None, str]] = [("p", "c", "")]
    # At the province's special grains a listing that is no special subject counts under
    # '' (the breakdown's "not special" row); the court's special grains hold only specials.
    families.append(("q", "s", fact.special_subject) if fact.special_subject else ("q", None, ""))

    def bump(day: date, columns: Iterable[str]) -> None:
        month = month_start(day)
        year = year_start(day)
        indexes = [_INDEX[column] for column in columns if column in _INDEX]
        for by_province, by_court, special in families:
            cells = [
                (by_province + "d", day, fact.province_code),
                (by_province + "m", month, fact.province_code),
                (by_province + "y", year, fact.province_code),
                (by_province + "t", TOTAL_START, fact.province_code),
            ]
            if by_court is not None:
                cells += [
                    (by_court + "d", day, fact.court_code),
                    (by_court + "m", month, fact.court_code),
                    (by_court + "y", year, fact.court_code),
                    (by_court + "t", TOTAL_START, fact.court_code),
                ]
            for grain, start, area in cells:
                row = deltas[(grain, start, area, fact.debtor_kind, special, fact.province_code)]
                for index in indexes:
                    row[index] += sign

    bump(fact.listed_on, ["listed", *(f"ground_{g}" for g in fact.grounds.split(",") if g)])
    if fact.removed_on is not None and fact.removal_reason is not None:
        columns = ["removed", f"reason_{fact.removal_reason}"]
        if fact.on_time is not None:
            columns.append("removed_on_time" if fact.on_time else "removed_late")
        bump(fact.removed_on, columns)


def _current(conn: Connection, ids: Sequence[str]) -> dict[str, Fact]:
    found: dict[str, Fact] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(
                Listing.id,
                Listing.court_code,
                Listing.province_code,
                Listing.debtor_kind,
                Listing.special_subject,
                Listing.listed_on,
                Listing.grounds,
                Listing.status,
                Listing.removed_on,
                Listing.removal_reason,
                Removal.on_time,
            )
            .outerjoin(Removal, Removal.listing_id == Listing.id)
            .where(Listing.id.in_(ids[start : start + _CHUNK]))
        )
        for row in rows:
            removed = row.status != "active"
            found[row.id] = Fact(
                court_code=row.court_code,
                province_code=row.province_code or "",
                debtor_kind=row.debtor_kind,
                special_subject=row.special_subject or "",
                listed_on=row.listed_on,
                grounds=",".join(row.grounds),
                removed_on=row.removed_on if removed else None,
                removal_reason=row.removal_reason if removed else None,
                on_time=row.on_time if removed else None,
            )
    return found


def _counted(conn: Connection, ids: Sequence[str]) -> dict[str, Fact]:
    found: dict[str, Fact] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(select(FACTS).where(FACTS.c.listing_id.in_(ids[start : start + _CHUNK])))
        for row in rows:
            found[row.listing_id] = Fact(*(getattr(row, name) for name in Fact._fields))
    return found


_KEY_COLUMNS = tuple(column.name for column in STATISTICS_COUNTS.primary_key.columns)
_FACT_ROW_COLUMNS = ("listing_id", *Fact._fields)


class _Plan(NamedTuple):
    """What bringing some listings' counts up to date writes: the facts of the listings gone,
    the facts to store, and the count rows to add (in key order: the upserts then walk the
    table's key in order). The rows are in the driver's form already: built as tuples, not
    a dict a row (about six count rows a listing), and converted before the write lock."""

    gone: list[str]
    facts: DriverRows
    counts: DriverRows


def _plan(
    conn: Connection, ids: Sequence[str], now_facts: dict[str, Fact], old_facts: dict[str, Fact]
) -> _Plan:
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0] * len(COUNT_COLUMNS))
    changed: list[str] = []
    for listing_id in ids:
        old, new = old_facts.get(listing_id), now_facts.get(listing_id)
        if old == new:
            continue
        changed.append(listing_id)
        if old is not None:
            _add(deltas, old, -1)
        if new is not None:
            _add(deltas, new, +1)
    facts = ((i, *now_facts[i]) for i in changed if i in now_facts)
    counts = ((*key, *deltas[key]) for key in sorted(deltas) if any(deltas[key]))
    return _Plan(
        gone=[i for i in changed if i not in now_facts],
        facts=driver_rows(conn, FACTS, _FACT_ROW_COLUMNS, facts),
        counts=driver_rows(conn, STATISTICS_COUNTS, (*KEY_FIELDS, *COUNT_COLUMNS), counts),
    )


def _write(conn: Connection, plan: _Plan) -> None:
    if plan.gone:
        conn.execute(delete(FACTS).where(FACTS.c.listing_id.in_(plan.gone)))
    # Through the driver (registry.bulk): a batch of 1,000 listings upserts about 6,000
    # count rows, and SQLAlchemy's building of each row's parameters was half of the
    # reader's time (profiled at 20,000 listings: 1.9 of 3.4 s).
    insert_driver_rows(conn, plan.facts, on_conflict=["listing_id"], update=Fact._fields)
    insert_driver_rows(conn, plan.counts, on_conflict=_KEY_COLUMNS, update=COUNT_COLUMNS, add=True)


def _listing_ids(events: Sequence[LogEvent]) -> list[str]:
    return sorted({e.listing_id for e in events if e.listing_id is not None})


def apply_listings(conn: Connection, ids: Sequence[str]) -> None:
    """Bring the counts of these listings up to date."""
    ids = sorted(set(ids))
    _write(conn, _plan(conn, ids, _current(conn, ids), _counted(conn, ids)))


def process(conn: Connection, events: Sequence[LogEvent], _now: datetime) -> None:
    apply_listings(conn, _listing_ids(events))


def prepare(conn: Connection, events: Sequence[LogEvent]) -> Process:
    """The scheduler's step (`registry.eventlog.readers.step_prepared`): the listings and
    their counted facts are read, and the count rows worked out, before the cursor is
    claimed; under the claim only the writes. On SQLite the reader held the write lock
    about 135 µs a listing while a batch was ingested, the upserts a little over half of it.

    A listing changed after it was read here has an event above this batch, which counts it
    again from what it is then. The facts change only under the cursor, whose position the
    step checks; they are read again under the claim all the same, and a batch whose facts
    were written meanwhile without the cursor moving is counted afresh there."""
    ids = _listing_ids(events)
    counted = _counted(conn, ids)
    plan = _plan(conn, ids, _current(conn, ids), counted)

    def apply(conn: Connection, _events: Sequence[LogEvent], _now: datetime) -> None:
        if _counted(conn, ids) != counted:
            apply_listings(conn, ids)
        else:
            _write(conn, plan)

    return apply


READER = LogReader(CURSOR, process, LISTING_EVENTS, prepare=prepare)


def reset(conn: Connection) -> None:
    """Empty the counts and move the cursor back to the log's start, in the caller's write
    transaction (claiming the cursor keeps a running reader out until it commits)."""
    claim_cursor(conn, CURSOR)
    conn.execute(delete(STATISTICS_COUNTS))
    conn.execute(delete(FACTS))
    advance(conn, CURSOR, 0)


# `recount`'s statements, for each database. Only constants are formatted in (column names,
# grounds and reasons from the code); nothing a request carries.
_FACT_COLUMNS = ("listing_id", *Fact._fields)
_GROUNDS_TEXT = {
    "postgresql": "(SELECT string_agg(g.value, ',' ORDER BY g.n)"
    " FROM json_array_elements_text(l.grounds) WITH ORDINALITY AS g(value, n))",
    "sqlite": "(SELECT group_concat(value, ',') FROM (SELECT value FROM json_each(l.grounds) ORDER BY key))",
}
_PERIOD_START = {
    "postgresql": {
        "d": "e.day",
        "m": "CAST(date_trunc('month', e.day) AS date)",
        "y": "CAST(date_trunc('year', e.day) AS date)",
        "t": f"DATE '{TOTAL_START.isoformat()}'",
    },
    "sqlite": {
        "d": "e.day",
        "m": "date(e.day, 'start of month')",
        "y": "date(e.day, 'start of year')",
        "t": f"'{TOTAL_START.isoformat()}'",
    },
}
_CONTAINS = {"postgresql": "strpos({haystack}, {needle}) > 0", "sqlite": "instr({haystack}, {needle}) > 0"}


def _facts_statement(dialect: str) -> str:
    removed = "l.status <> 'active'"
    return (
        f"INSERT INTO statistics_facts ({', '.join(_FACT_COLUMNS)})"  # noqa: S608 - constants
        " SELECT l.id, l.court_code, coalesce(l.province_code, ''), l.debtor_kind,"
        f" coalesce(l.special_subject, ''), l.listed_on, coalesce({_GROUNDS_TEXT[dialect]}, ''),"
        f" CASE WHEN {removed} THEN l.removed_on END, CASE WHEN {removed} THEN l.removal_reason END,"
        f" CASE WHEN {removed} THEN r.on_time END"
        " FROM listings AS l LEFT JOIN removals AS r ON r.listing_id = l.id"
    )


def _counts_statement(dialect: str) -> str:
    """Every fact's listing day, and its removal day if it has one, at each of its grains
    (`_add`'s rule: `p…`, `c…` and `q…` for every listing, `q…` under '' for one that is no
    special subject, `s…` for special subjects only), summed per row of the counts."""
    grains = ", ".join(f"('{grain}')" for grain in GRAINS)
    listing, removal = "e.is_listing = 1", "e.is_listing = 0"
    sums = {
        "listed": listing,
        "removed": removal,
        "removed_on_time": f"{removal} AND e.on_time IS TRUE",
        "removed_late": f"{removal} AND e.on_time IS FALSE",
    }
    for ground in GROUNDS:
        contains = _CONTAINS[dialect].format(haystack="(',' || e.grounds || ',')", needle=f"',{ground},'")
        sums[f"ground_{ground}"] = f"{listing} AND {contains}"
    for column in COUNT_COLUMNS:
        if column.startswith("reason_"):
            sums[column] = f"{removal} AND e.removal_reason = '{column.removeprefix('reason_')}'"
    assert tuple(sums) == COUNT_COLUMNS
    period = " ".join(f"WHEN '{size}' THEN {start}" for size, start in _PERIOD_START[dialect].items())
    return (
        "WITH e AS ("  # noqa: S608 - constants
        " SELECT f.*, 1 AS is_listing, f.listed_on AS day FROM statistics_facts AS f"
        " UNION ALL SELECT f.*, 0 AS is_listing, f.removed_on AS day FROM statistics_facts AS f"
        " WHERE f.removed_on IS NOT NULL AND f.removal_reason IS NOT NULL"
        f"), g (grain) AS (VALUES {grains})"
        f" INSERT INTO statistics_counts (grain, period_start, area, debtor_kind, special_subject,"
        f" province_code, {', '.join(COUNT_COLUMNS)})"
        f" SELECT g.grain, CASE substr(g.grain, 2, 1) {period} END,"
        " CASE WHEN substr(g.grain, 1, 1) IN ('p', 'q') THEN e.province_code ELSE e.court_code END,"
        " e.debtor_kind,"
        " CASE WHEN substr(g.grain, 1, 1) IN ('p', 'c') THEN '' ELSE e.special_subject END,"
        " e.province_code, "
        + ", ".join(f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)" for condition in sums.values())
        + " FROM e JOIN g ON substr(g.grain, 1, 1) <> 's' OR e.special_subject <> ''"
        " GROUP BY 1, 2, 3, 4, 5, 6"
    )


def recount(conn: Connection) -> int:
    """Count the list again, in SQL, in the caller's write transaction: the facts from the
    listings as they stand, the counts from the facts, and the cursor at the log's head;
    returns how many listings it counted. What `reset` and reading the whole log again give,
    in minutes instead of hours on a list of millions (the reader upserts about five count
    rows a listing; measured on PostgreSQL, 600-1,100 events/s).

    The head is read before the listings: an event after it may be counted already, and
    the reader reading it again changes nothing (a fact that equals the listing is
    skipped), whereas an event counted by neither would be lost."""
    dialect = conn.dialect.name
    claim_cursor(conn, CURSOR)
    position, _ = head(conn)
    conn.execute(delete(STATISTICS_COUNTS))
    conn.execute(delete(FACTS))
    counted = conn.execute(text(_facts_statement(dialect))).rowcount
    conn.execute(text(_counts_statement(dialect)))
    advance(conn, CURSOR, position)
    return int(counted)


class Compacted(NamedTuple):
    rows: int
    pages_before: int
    pages_after: int


def compact(conn: Connection) -> Compacted | None:
    """Rewrite `statistics_counts` in key order on PostgreSQL (`CLUSTER`), in the caller's write
    transaction, so that a period's rows lie together again; None on SQLite, whose table is
    kept in key order already (WITHOUT ROWID).

    The fillfactor (migration 0018) keeps updated rows on their page, but a row first written
    when its page was full, or a bulk load in another order, lands elsewhere; a year's figures
    then read one page per row. `CLUSTER` locks the table (statistics requests wait) for the
    rewrite: a quiet-hours job (docs/operations.md)."""
    if conn.dialect.name != "postgresql":
        return None
    # The reader's batch finishes first, and none starts, so the lock is not queued behind it.
    claim_cursor(conn, CURSOR)
    pages = text("SELECT pg_relation_size('statistics_counts') / current_setting('block_size')::int")
    before = conn.execute(pages).scalar_one()
    conn.execute(text("CLUSTER statistics_counts USING pk_statistics_counts"))
    conn.execute(text("ANALYZE statistics_counts"))
    rows = conn.execute(select(func.count()).select_from(STATISTICS_COUNTS)).scalar_one()
    return Compacted(rows, before, conn.execute(pages).scalar_one())
