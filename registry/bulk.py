"""Multi-row inserts straight to the driver, for the ingest hot path.

SQLAlchemy Core spends ~40-60 µs per row building and processing parameters, twice what
SQLite needs to store the row (measured: 60-80 µs against ~20 µs with the same rows), and
ingest writes three rows per listing. Here each column's value is converted once, the
way SQLAlchemy itself stores it, and the rows go to the DBAPI cursor's `executemany`
inside the caller's transaction. Drivers other than sqlite3, aiosqlite and psycopg take
SQLAlchemy's own path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    dialect = conn.dialect.name
    driver = conn.dialect.driver
    if not (dialect == "sqlite" or driver == "psycopg"):
        conn.execute(_sqlalchemy_insert(conn, table, on_conflict, update, add), list(rows))
        return
    columns = list(rows[0])
    converters = [_converter(table.c[name].type, dialect) for name in columns]
    if dialect == "sqlite":
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
        if dialect == "postgresql" and not on_conflict:
            _copy(cursor, table.name, columns, _driver_rows(rows, columns, converters))
        else:
            cursor.executemany(statement, _driver_rows(rows, columns, converters))
    finally:
        cursor.close()


def _copy(cursor: Any, table: str, columns: list[str], rows: list[tuple[Any, ...] | list[Any]]) -> None:
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


def _driver_rows(
    rows: Sequence[dict[str, Any]], columns: list[str], converters: list[Callable[[Any], Any] | None]
) -> list[tuple[Any, ...] | list[Any]]:
    """Rows as tuples in column order, converting only the columns that need it."""
    pick = itemgetter(*columns)
    to_convert = [(index, convert) for index, convert in enumerate(converters) if convert is not None]
    if not to_convert:
        return [pick(row) if len(columns) > 1 else (pick(row),) for row in rows]
    out: list[tuple[Any, ...] | list[Any]] = []
    for row in rows:
        values = list(pick(row))
        for index, convert in to_convert:
            if values[index] is not None:
                values[index] = convert(values[index])
        out.append(values)
    return out
