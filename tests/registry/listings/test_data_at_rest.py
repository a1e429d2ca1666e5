"""Data at rest (issue 15 #2): from a copy of the database, no clear column, alone or beside
any other of its row, gives a person's identity number back. The attack that worked before:
`listings.debtor_id_masked` (`1101051984****1234`) beside `listings.debtor_birth_date`, or
`search_docs.entry` beside `search_docs.birth_date`, was the full number without any key.
SQLite database files are created 0600."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from registry.db import private_sqlite_file
from registry.identity.identifiers import id_check_character
from registry.settings import DatabaseSettings
from tests.support.harness import CourtHandle, Registry, run_search_indexer
from tests.support.listings import publish_many

_DATE = re.compile(r"(19|20)[0-9]{2}-?[01][0-9]-?[0-3][0-9]", re.ASCII)


def _clear_values(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as a copy of the database holds it (ciphertexts included:
    they are opaque without the keys, so any match in them would be a leak too)."""
    tables: dict[str, list[dict[str, Any]]] = {}
    with registry.engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("search_fts") or name == "alembic_version":
                continue
            rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).mappings().all()
            tables[name] = [dict(row) for row in rows]
    return tables


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return [raw.decode()]
        except UnicodeDecodeError:
            return [raw.decode("latin-1")]
    if isinstance(value, dict | list):
        return [json.dumps(value, ensure_ascii=False)]
    if isinstance(value, date | datetime):
        return [value.isoformat()]
    return [str(value)]


def _rebuilt(masked: str, dates: list[str]) -> set[str]:
    """What the old attack gets from a mask and the dates beside it: each date filled into
    the birth-date positions, the check character computed. Empty when positions beyond the
    birth date stay masked (nothing is rebuilt, only a candidate space)."""
    out = set()
    for day in dates:
        digits = day.replace("-", "")[:8]
        filled = masked[:6] + digits + masked[14:]
        if len(filled) == 18 and "*" not in filled[:17]:
            out.add(filled[:17] + id_check_character(filled[:17]))
    return out


def test_no_clear_column_nor_row_rebuilds_an_identity_number(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    bodies = [registry.person_listing(court) for _ in range(12)]
    publish_many(registry, court, bodies)
    run_search_indexer(engine)
    numbers = {body["debtor"]["id_number"] for body in bodies}
    tables = _clear_values(registry)
    assert tables["listings"] and tables["search_docs"]
    for table, rows in tables.items():
        for row in rows:
            texts = [text for value in row.values() for text in _texts(value)]
            joined = "\x1f".join(texts)
            for number in numbers:
                assert number not in joined, f"{table} holds a full number in clear"
                assert number[:6] + number[6:14] not in joined, f"{table} holds a number's first 14 digits"
            masks = [m for text in texts for m in re.findall(r"[0-9X*]{18}", text) if "*" in m]
            dates = [m.group() for text in texts for m in _DATE.finditer(text)]
            for masked in masks:
                assert not (_rebuilt(masked, dates) & numbers), f"{table}: mask and date rebuild a number"
                # Nothing of the county code, the sequence or the check character is kept.
                assert masked[2:6] == "****" and masked[10:] == "*" * 8, (table, masked)
    # The birth date is only inside the ciphertext: no clear column of the listing has it.
    for row in tables["listings"]:
        number = next(n for n in numbers if row["debtor_id_masked"][6:10] == n[6:10])
        assert "debtor_birth_date" not in row and row["debtor_birth_year"] == int(number[6:10])
    assert all("birth_date" not in row for row in tables["search_docs"])


def test_sqlite_database_files_are_created_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "new" / "registry.db"
    url = DatabaseSettings(url=f"sqlite:///{path}").url
    private_sqlite_file(url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old_umask = os.umask(0o022)
    try:
        with sqlite3.connect(path) as db:  # SQLite's own files follow the database file's mode
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE t (x)")
            db.execute("INSERT INTO t VALUES (1)")
            for suffix in ("-wal", "-shm"):
                side = Path(f"{path}{suffix}")
                assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600, suffix
    finally:
        os.umask(old_umask)
    private_sqlite_file(url)  # an existing database is left as it is
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_session_database_file_is_private(registry: Registry) -> None:
    url = os.environ["REGISTRY_DATABASE_URL"]
    if not url.startswith("sqlite"):
        return  # PostgreSQL keeps its own files
    path = Path(url.split(":///", 1)[1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
