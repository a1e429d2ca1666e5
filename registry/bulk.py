"""Multi-row inserts straight to the driver, for the ingest hot path.

SQLAlchemy Core spends ~40-60 µs per row building and processing parameters, twice what
SQLite needs to store the row (measured: 60-80 µs against ~20 µs with the same rows), and
ingest writes three rows per listing. Here each column's value is converted once, the
way SQLAlchemy itself stores it, and the rows go to the DBAPI cursor's `executemany`
inside the caller's transaction. Drivers other than sqlite3, aiosqlite and psycopg take
SQLAlchemy's own path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Connection, Date, Table, insert

from registry.db import dialect_insert, json_text
from registry.timeutil import UtcDateTime, as_utc


@lru_cache(maxsize=256)
def _sqlite_timestamp(value: datetime) -> str:
    # Cached: the rows of one batch share their commit timestamp.
    # SQLAlchemy's SQLite DATETIME storage format, in UTC (see UtcDateTime).
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_date(value: date) -> str:
    return value.isoformat()


def _converter(column_type: Any, dialect: str) -> Callable[[Any], Any] | None:
    if isinstance(column_type, JSON):
        return json_text
    if dialect == "sqlite":
        if isinstance(column_type, UtcDateTime):
            return _sqlite_timestamp
        if isinstance(column_type, Date):
            return _sqlite_date
    return None


def _direct(conn: Connection) -> bool:
    """Whether `conn`'s rows go straight to its driver (sqlite3, aiosqlite, psycopg)."""
    return conn.dialect.name == "sqlite" or conn.dialect.driver == "psycopg"


@dataclass(frozen=True)
class DriverRows:
    """Rows of one table in the form a database's driver takes (`driver_rows`), made ready
    ahead of their insert (`insert_driver_rows`): a log reader converts its rows before it
    takes the write lock, and holds the lock for the insert alone."""

    table: Table
    columns: tuple[str, ...]
    # Sequences in the driver's form; dicts where SQLAlchemy's own path is taken.
    rows: list[Any]
    direct: bool


def driver_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> DriverRows:
    """`rows` (values in `columns`' order) in the form `conn`'s driver takes, each column's
    values converted the way SQLAlchemy itself stores them."""
    names = tuple(columns)
    if not _direct(conn):
        return DriverRows(table, names, [dict(zip(names, row, strict=True)) for row in rows], direct=False)
    converters = [_converter(table.c[name].type, conn.dialect.name) for name in names]
    return DriverRows(table, names, _converted(rows, converters), direct=True)


def insert_driver_rows(
    conn: Connection,
    prepared: DriverRows,
    *,
    on_conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    add: bool = False,
) -> None:
    """Insert rows made ready by `driver_rows` (on a connection to the same database), with
    `bulk_insert`'s rule for a taken key."""
    if not prepared.rows:
        return
    table, columns = prepared.table, prepared.columns
    if not prepared.direct:
        conn.execute(_sqlalchemy_insert(conn, table, on_conflict, update, add), prepared.rows)
        return
    if conn.dialect.name == "sqlite":
        placeholders = ", ".join("?" for _ in columns)
    else:
        placeholders = ", ".join(
            "%s::json" if isinstance(table.c[name].type, JSON) else "%s" for name in columns
        )
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608 - our names
    if on_conflict:
        # The same text on SQLite and PostgreSQL.
        assignments = ", ".join(
            f"{name} = {table.name}.{name} + excluded.{name}" if add else f"{name} = excluded.{name}"
            for name in update
        )
        statement += f" ON CONFLICT ({', '.join(on_conflict)}) DO UPDATE SET {assignments}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql" and not on_conflict:
            _copy(cursor, table.name, columns, prepared.rows)
        else:
            cursor.executemany(statement, prepared.rows)
    finally:
        cursor.close()


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    on_conflict: Sequence[str] = (),
    update: Sequence[str] = (),
    add: bool = False,
) -> None:
    """Insert `rows` (dicts with the same keys). With `on_conflict` (the columns of a unique
    key), a row whose key is taken updates the stored row's `update` columns instead: set
    to the new values, or with `add` increased by them (counters)."""
    if not rows:
        return
    if not _direct(conn):
        conn.execute(_sqlalchemy_insert(conn, table, on_conflict, update, add), list(rows))
        return
    columns = tuple(rows[0])
    pick = itemgetter(*columns)
    values = map(pick, rows) if len(columns) > 1 else ((pick(row),) for row in rows)
    insert_driver_rows(
        conn, driver_rows(conn, table, columns, values), on_conflict=on_conflict, update=update, add=add
    )


def _copy(cursor: Any, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    """PostgreSQL's COPY: one stream for all the rows, where `executemany` sends each row
    its own bind and execute (measured: 1,000 query-log rows in 5.0 ms against 10.5)."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _sqlalchemy_insert(
    conn: Connection, table: Table, on_conflict: Sequence[str], update: Sequence[str], add: bool
) -> Any:
    if not on_conflict:
        return insert(table)
    statement = dialect_insert(conn, table)
    return statement.on_conflict_do_update(
        index_elements=list(on_conflict),
        set_={
            name: table.c[name] + statement.excluded[name] if add else statement.excluded[name]
            for name in update
        },
    )


def _converted(rows: Iterable[Sequence[Any]], converters: list[Callable[[Any], Any] | None]) -> list[Any]:
    """Rows as they are, or as lists with the columns that need it converted."""
    to_convert = [(index, convert) for index, convert in enumerate(converters) if convert is not None]
    if not to_convert:
        return list(rows)
    out: list[Any] = []
    for row in rows:
        values = list(row)
        for index, convert in to_convert:
            if values[index] is not None:
                values[index] = convert(values[index])
        out.append(values)
    return out
