"""The statements a check runs, twice: SQLAlchemy Core (PostgreSQL through asyncpg,
and the CLI), and the sqlite3 driver directly for the embedded default's web hot path.

Why two: measured on this machine, a check on SQLite spends more in SQLAlchemy's
statement and result machinery (~60 µs a statement) than in SQLite itself (~10 µs); on
SQLite a check's whole read is one statement (`SqliteStore.snapshot`).
`tests/registry/checks/` run the web path on both databases, and the CLI runs the Core
path on SQLite, so both stay exercised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any, NamedTuple, Protocol, cast

import msgspec
from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    Table,
    any_,
    bindparam,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from registry.bulk import bulk_insert
from registry.checks.models import CheckLogEntry, CheckUsage
from registry.clients.models import ApiClient
from registry.courts.models import Court
from registry.eventlog.models import LogHead
from registry.eventlog.services import HEAD_ID
from registry.listings.details import ListingDetails, listing_details
from registry.listings.models import Listing
from registry.timeutil import as_utc
from registry.translog.models import LogCheckpoint

_CHECK_LOG = cast(Table, CheckLogEntry.__table__)
LOG_COLUMNS = (
    "check_id",
    "client_id",
    "checked_at",
    "purpose",
    "reference",
    "subject_index",
    "subject_blind",
    "result",
    "listings",
    "name_mismatch",
    "error",
)


_LATEST_CHECKPOINT = (
    select(LogCheckpoint.tree_size, LogCheckpoint.root_hash).order_by(LogCheckpoint.tree_size.desc()).limit(1)
)


class ListedRow(NamedTuple):
    """An active listing as the check reads it (both stores return these)."""

    id: str
    version: int
    debtor_id_blind: bytes
    debtor_name: str
    debtor_id_masked: str
    court_code: str
    court_name: str
    case_number: str
    details: ListingDetails
    grounds: list[str]
    filed_on: date
    listed_on: date
    term_years: int | None
    expires_on: date | None


class Snapshot(NamedTuple):
    """What a check reads, all from one snapshot: the listings it answers from and the log
    position and checkpoint its receipt names agree."""

    listings: list[ListedRow]
    log_head: tuple[int, bytes]
    # (tree size, root hash) of the newest signed transparency-log checkpoint, if any.
    checkpoint: tuple[int, bytes] | None


class CheckStore(Protocol):
    def client(self, key_hash: bytes) -> tuple[str, str] | None:
        """(client id, role) of an unrevoked API key."""

    def usage(self, client_id: str, day: date) -> int:
        """The subjects counted so far that day, held unchanged by others until the caller's
        write transaction ends."""

    def charge(self, client_id: str, day: date, subjects: int) -> int:
        """Adds to today's count; returns the new total."""

    def snapshot(self, blinds: Sequence[bytes], today: date) -> Snapshot:
        """The active listings under these blind-index values, the log head and the newest
        checkpoint, from one snapshot of the database."""

    def append_log(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows in LOG_COLUMNS order."""


def _lookup(blinds: ColumnElement[bool]) -> Select[Any]:
    # A fixed-term listing whose term has ended is out even before the expiry job runs.
    return (
        select(
            Listing.id,
            Listing.version,
            Listing.debtor_id_blind,
            Listing.debtor_name,
            Listing.debtor_id_masked,
            Listing.court_code,
            Court.name.label("court_name"),
            Listing.case_number,
            Listing.details,
            Listing.grounds,
            Listing.filed_on,
            Listing.listed_on,
            Listing.term_years,
            Listing.expires_on,
        )
        .join(Court, Court.code == Listing.court_code)
        .where(
            blinds,
            Listing.status == "active",
            or_(Listing.expires_on.is_(None), Listing.expires_on >= bindparam("today")),
        )
        .order_by(Listing.listed_on, Listing.id)
    )


_CLIENT = select(ApiClient.id, ApiClient.role).where(
    ApiClient.key_hash == bindparam("key_hash"), ApiClient.revoked_at.is_(None)
)
# The check's whole read in one statement, which is its own snapshot: the log head's row,
# the newest checkpoint (NULL before the first), and each active listing under the
# blind-index values, joined to the head's row (LEFT: the head comes back when nothing is
# listed). One round trip, and no transaction to begin and end around three.
_NEWEST_CHECKPOINT = _LATEST_CHECKPOINT.subquery("newest")


def _snapshot(blinds: ColumnElement[bool]) -> Select[Any]:
    matches = _lookup(blinds).subquery("matches")
    return (
        select(
            LogHead.last_seq,
            LogHead.last_hash,
            _NEWEST_CHECKPOINT.c.tree_size,
            _NEWEST_CHECKPOINT.c.root_hash,
            *matches.c,
        )
        .select_from(LogHead)
        .outerjoin(_NEWEST_CHECKPOINT, true())
        .outerjoin(matches, true())
        .where(LogHead.id == HEAD_ID)
        .order_by(matches.c.listed_on, matches.c.id)
    )


# On PostgreSQL the blind-index values go as one array (`= ANY`): an expanding IN renders a
# parameter per value, which cost 2.3 ms of a batch of 1,000 subjects in SQLAlchemy alone.
_SNAPSHOT = {
    "postgresql": _snapshot(Listing.debtor_id_blind == any_(bindparam("blinds", type_=ARRAY(LargeBinary)))),
    "sqlite": _snapshot(Listing.debtor_id_blind.in_(bindparam("blinds", expanding=True))),
}


def _add_usage(insert: Any) -> Any:
    return (
        insert(CheckUsage)
        .values(client_id=bindparam("client_id"), day=bindparam("day"), subjects=bindparam("subjects"))
        .on_conflict_do_update(
            index_elements=["client_id", "day"],
            set_={"subjects": CheckUsage.subjects + bindparam("subjects")},
        )
        .returning(CheckUsage.subjects)
    )


# Built once: a statement built per call spent more in SQLAlchemy than the upsert did.
_ADD_USAGE = {"postgresql": _add_usage(postgresql.insert), "sqlite": _add_usage(sqlite.insert)}


class CoreStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def client(self, key_hash: bytes) -> tuple[str, str] | None:
        row = self.conn.execute(_CLIENT, {"key_hash": key_hash}).first()
        return None if row is None else (row.id, row.role)

    def charge(self, client_id: str, day: date, subjects: int) -> int:
        parameters = {"client_id": client_id, "day": day, "subjects": subjects}
        return int(self.conn.execute(_ADD_USAGE[self.conn.dialect.name], parameters).scalar_one())

    def usage(self, client_id: str, day: date) -> int:
        # The row is made (at 0) or its lock taken: a bare SELECT … FOR UPDATE locks nothing
        # before the day's first check, and two groups would both start from 0.
        return self.charge(client_id, day, 0)

    def snapshot(self, blinds: Sequence[bytes], today: date) -> Snapshot:
        rows = self.conn.execute(
            _SNAPSHOT[self.conn.dialect.name], {"blinds": list(blinds), "today": today}
        ).all()
        first = rows[0]
        listings = [
            ListedRow._make((*row[4:12], listing_details(row[12]), *row[13:]))
            for row in rows
            if row[4] is not None
        ]
        checkpoint = None if first[2] is None else (int(first[2]), bytes(first[3]))
        return Snapshot(listings, (int(first[0]), bytes(first[1])), checkpoint)

    def append_log(self, rows: Sequence[tuple[Any, ...]]) -> None:
        bulk_insert(self.conn, _CHECK_LOG, [dict(zip(LOG_COLUMNS, row, strict=True)) for row in rows])


_SQLITE_CLIENT = "SELECT id, role FROM api_clients WHERE key_hash = ? AND revoked_at IS NULL"
_SQLITE_CHARGE = (
    "INSERT INTO check_usage (client_id, day, subjects) VALUES (?, ?, ?) "
    "ON CONFLICT (client_id, day) DO UPDATE SET subjects = subjects + excluded.subjects RETURNING subjects"
)
_SQLITE_USAGE = "SELECT subjects FROM check_usage WHERE client_id = ? AND day = ?"
# The check's whole read in one statement, its own snapshot without BEGIN and COMMIT: first
# a row with the log head and the newest checkpoint (NULL before the first), then each
# active listing under the blind-index values. Measured: a third cheaper than a LEFT JOIN of
# the three, which SQLite materialises.
_SQLITE_SNAPSHOT = (
    "SELECT 0, last_seq, last_hash,"  # noqa: S608 - constants; values are bound
    " (SELECT tree_size FROM translog_checkpoints ORDER BY tree_size DESC LIMIT 1),"
    " (SELECT root_hash FROM translog_checkpoints ORDER BY tree_size DESC LIMIT 1),"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    f" FROM log_head WHERE id = {HEAD_ID}"
    " UNION ALL SELECT 1, NULL, NULL, NULL, NULL,"
    " l.id, l.version, l.debtor_id_blind, l.debtor_name, l.debtor_id_masked, l.court_code, c.name,"
    " l.case_number, l.details, l.grounds, l.filed_on, l.listed_on, l.term_years, l.expires_on"
    " FROM listings AS l JOIN courts AS c ON c.code = l.court_code"
    " WHERE l.debtor_id_blind IN ({marks}) AND l.status = 'active'"
    " AND (l.expires_on IS NULL OR l.expires_on >= ?)"
    # The head's row first, then the listings by listed_on and id.
    " ORDER BY 1, 17, 6"
)
_SQLITE_LOG = (
    f"INSERT INTO check_log ({', '.join(LOG_COLUMNS)}) VALUES ({', '.join('?' for _ in LOG_COLUMNS)})"  # noqa: S608 - constants
)


@lru_cache(maxsize=64)
def _sqlite_time(value: datetime) -> str:
    # How UtcDateTime stores instants on SQLite (naive UTC text), so both paths sort alike.
    # Cached: every row of a check shares its time.
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteStore:
    """On a sqlite3 connection inside a transaction the caller began (BEGIN IMMEDIATE)."""

    def __init__(self, dbapi_connection: Any) -> None:
        self.db = dbapi_connection

    def client(self, key_hash: bytes) -> tuple[str, str] | None:
        row = self.db.execute(_SQLITE_CLIENT, (key_hash,)).fetchone()
        return None if row is None else (row[0], row[1])

    def charge(self, client_id: str, day: date, subjects: int) -> int:
        return int(self.db.execute(_SQLITE_CHARGE, (client_id, day.isoformat(), subjects)).fetchone()[0])

    def usage(self, client_id: str, day: date) -> int:
        # Held by the caller's BEGIN IMMEDIATE: no other writer until its commit.
        row = self.db.execute(_SQLITE_USAGE, (client_id, day.isoformat())).fetchone()
        return 0 if row is None else int(row[0])

    def snapshot(self, blinds: Sequence[bytes], today: date) -> Snapshot:
        # One parameter a blind-index value: SQLite allows 32,766, a check has at most 2,000
        # (1,000 subjects, REGISTRY_CHECK_BATCH_MAX_SUBJECTS, two each during a key rotation).
        sql = _SQLITE_SNAPSHOT.format(marks=",".join("?" * len(blinds)))
        head, *rows = self.db.execute(sql, (*blinds, today.isoformat())).fetchall()
        listings = [
            ListedRow(
                row[5],
                row[6],
                row[7],
                row[8],
                row[9],
                row[10],
                row[11],
                row[12],
                listing_details(row[13]),
                msgspec.json.decode(row[14]),
                date.fromisoformat(row[15]),
                date.fromisoformat(row[16]),
                row[17],
                date.fromisoformat(row[18]) if row[18] else None,
            )
            for row in rows
        ]
        checkpoint = None if head[3] is None else (int(head[3]), bytes(head[4]))
        return Snapshot(listings, (int(head[1]), bytes(head[2])), checkpoint)

    def append_log(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.db.executemany(_SQLITE_LOG, [(*row[:2], _sqlite_time(row[2]), *row[3:]) for row in rows])
