"""`registry bench sizes`: what N signed listings take on disk, table by table, once a
deployment has run over them (imported, indexed, the transparency log and the feeds caught
up), for the capacity plan (docs/capacity.md). JSON out: bytes per table (with its indexes),
rows, and bytes per listing.

SQLite: `dbstat` (page-level, the file's real use). PostgreSQL: `pg_table_size` (heap and
TOAST) and `pg_indexes_size`, after `VACUUM ANALYZE`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    _registry,
    bulk_listings,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
)
from registry.db import create_sync_engine
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from search.maintenance import reindex_now

SQLITE_SIZES = "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
SQLITE_INDEXES = "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"
SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
PG_SIZES = (
    "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid), c.reltuples::bigint "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
)


def _sqlite_sizes(engine: Any) -> dict[str, dict[str, int]]:
    with engine.connect() as conn:
        pages = dict(conn.execute(text(SQLITE_SIZES)).all())
        owner = dict(conn.execute(text(SQLITE_INDEXES)).all())
        tables = [row[0] for row in conn.execute(text(SQLITE_TABLES))]
        out: dict[str, dict[str, int]] = {}
        for table in tables:
            rows = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608
            out[table] = {"table_bytes": int(pages.get(table, 0)), "index_bytes": 0, "rows": int(rows)}
        for name, size in pages.items():
            if name in owner and owner[name] in out:
                out[owner[name]]["index_bytes"] += int(size)
            elif name.startswith("sqlite_autoindex_"):
                table = name.removeprefix("sqlite_autoindex_").rsplit("_", 1)[0]
                if table in out:
                    out[table]["index_bytes"] += int(size)
    return out


def _pg_sizes(url: str) -> dict[str, dict[str, int]]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        with engine.connect() as conn:
            return {
                name: {"table_bytes": int(table), "index_bytes": int(index), "rows": int(rows)}
                for name, table, index, rows in conn.execute(text(PG_SIZES))
            }
    finally:
        engine.dispose()


def run_sizes_bench(
    *, count: int, database_url: str | None = None, bulk_on_top: int | None = None
) -> dict[str, Any]:
    """`bulk_on_top`: build the list by the bulk path (`bench.bulk`), this many of its
    listings through `registry import` on top (the import figure at this size)."""
    scratch: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-sizes-bench-") as folder:
        root = Path(folder)
        if database_url is None:
            url = f"sqlite:///{root / 'bench.db'}"
        else:
            url = fresh_postgres_database(database_url, "sizes", prefix=database_url.rpartition("/")[2])
            scratch.append(url.rsplit("/", 1)[1])
        if bulk_on_top is None:
            env, imported = import_signed_listings(root, url, count)
        else:
            env, imported = bulk_listings(root, url, count, bulk_on_top)
        settings = Settings(
            database=DatabaseSettings(url=url),
            keys=KeySettings(secrets_file=root / "secrets.json"),
            server=ServerSettings(scheduler=False),
        )
        started = time.perf_counter()
        reindexed = reindex_now(settings)
        for command in (("log", "checkpoint"), ("feeds", "sync")):
            _registry(*command, env=env)
        caught_up = round(time.perf_counter() - started, 1)
        if database_url is None:
            engine = create_sync_engine(url)
            try:
                tables = _sqlite_sizes(engine)
            finally:
                engine.dispose()
            file_bytes = (root / "bench.db").stat().st_size
        else:
            tables = _pg_sizes(url)
            file_bytes = None
    if database_url is not None:
        drop_postgres_databases(database_url, scratch)
    total = sum(t["table_bytes"] + t["index_bytes"] for t in tables.values())
    return {
        "benchmark": "sizes",
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "import": imported,
        "indexed_documents": reindexed["documents"],
        "index_checkpoint_feeds_seconds": caught_up,
        "database_bytes": total,
        "sqlite_file_bytes": file_bytes,
        "bytes_per_listing": round(total / count),
        "tables": {
            name: sizes | {"bytes_per_listing": round((sizes["table_bytes"] + sizes["index_bytes"]) / count)}
            for name, sizes in sorted(
                tables.items(), key=lambda item: -(item[1]["table_bytes"] + item[1]["index_bytes"])
            )
            if sizes["table_bytes"] + sizes["index_bytes"] > 0
        },
    }
