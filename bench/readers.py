"""`registry bench readers`: what each log reader costs a listing event, alone.

A scratch database (SQLite unless a PostgreSQL server is given) gets `--listings` signed
listings through `registry import`, whose events no reader has read. Then each reader the
service runs over every listing event (statistics, feeds, transparency log, watchlists,
assistance notices, search) catches up on a copy of its own, in this process, as its
scheduler job runs it (`follow_sync`, or `follow_prepared_sync` for a reader with
`prepare`), and is timed: wall and CPU time of this process (on PostgreSQL the server's
own CPU is not in it), and how long it held write transactions, per event. On SQLite the
write time is the one lock the ingest workers wait for while a batch is ingested
(docs/benchmarks.md, where the batch endpoint waits).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event

from bench.common import (
    _postgres_admin,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
    load_average,
    timed_figure,
)
from publishing.feeds.reader import READER as FEEDS
from publishing.statistics.reader import READER as STATISTICS
from publishing.sync.notices import notice_reader
from registry.checks.watchlist import reader_for
from registry.db import create_sync_engine
from registry.eventlog.readers import LogReader, follow_prepared_sync, follow_sync
from registry.identity.crypto import load_secrets
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from registry.translog.services import READER as TRANSLOG
from search.indexer import index_follower
from search.runtime import open_engine

# The readers of every listing event, each built as its job builds it.
READERS: dict[str, Callable[[Settings], LogReader]] = {
    "statistics": lambda _settings: STATISTICS,
    "feeds": lambda _settings: FEEDS,
    "translog": lambda _settings: TRANSLOG,
    "watchlist": lambda settings: reader_for(load_secrets(settings)),
    "notices": lambda settings: notice_reader(settings.sync.notice_deadline_days),
    "search": lambda settings: index_follower(open_engine(settings)),
}


class WriteClock:
    """The time `engine`'s write transactions were open, from BEGIN to COMMIT, and how many."""

    def __init__(self, engine: Engine) -> None:
        self.seconds = 0.0
        self.transactions = 0
        self._began = 0.0
        event.listen(engine, "begin", self._begin)
        event.listen(engine, "commit", self._commit)

    def _begin(self, _conn: Connection) -> None:
        self._began = time.perf_counter()

    def _commit(self, _conn: Connection) -> None:
        self.seconds += time.perf_counter() - self._began
        self.transactions += 1


def _copy(url: str, root: Path, name: str) -> str:
    """A copy of the imported database for one reader (SQLite: the files; PostgreSQL: a
    database made from it as a template)."""
    if url.startswith("sqlite"):
        source = Path(url.split("///", 1)[1])
        target = root / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copy2(f"{source}{suffix}", f"{target}{suffix}")
        return f"sqlite:///{target}"
    base, _, template = url.rpartition("/")
    copy = f"{template}_{name}"
    _postgres_admin(url, f"DROP DATABASE IF EXISTS {copy}")
    _postgres_admin(url, f"CREATE DATABASE {copy} TEMPLATE {template}")
    return f"{base}/{copy}"


def _measure(settings: Settings, reader: LogReader) -> dict[str, Any]:
    writer = create_sync_engine(settings.database.url)
    reader_engine = create_sync_engine(settings.database.url, writer=False)
    clock = WriteClock(writer)
    started_load = load_average()
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        if reader.prepare is not None:
            events = follow_prepared_sync(writer, reader_engine, reader)
        else:
            events = follow_sync(writer, reader)
    finally:
        writer.dispose()
        reader_engine.dispose()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

    def per_event(seconds: float) -> float | None:
        return round(seconds / events * 1e6, 1) if events else None

    return timed_figure(
        {
            "log_events": events,
            "write_transactions": clock.transactions,
            "wall_us_per_event": per_event(wall),
            "cpu_us_per_event": per_event(cpu),
            "write_transaction_us_per_event": per_event(clock.seconds),
        },
        started_load,
    )


def run_readers_bench(*, count: int, database_url: str | None = None) -> dict[str, Any]:
    scratch: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-bench-readers-") as directory:
        root = Path(directory)
        if database_url is None:
            url = f"sqlite:///{root / 'imported.db'}"
        else:
            url = fresh_postgres_database(database_url, "readers")
            scratch.append(url.rsplit("/", 1)[1])
        _, imported = import_signed_listings(root, url, count)
        figures: dict[str, Any] = {}
        for name, build in READERS.items():
            copy = _copy(url, root, name)
            if database_url is not None:
                scratch.append(copy.rsplit("/", 1)[1])
            settings = Settings(
                database=DatabaseSettings(url=copy),
                keys=KeySettings(
                    secrets_file=root / "secrets.json", signing_key_file=root / "signing-keys.json"
                ),
                server=ServerSettings(scheduler=False),
            )
            figures[name] = _measure(settings, build(settings))
    if database_url is not None:
        drop_postgres_databases(database_url, scratch)
    measured = [figure for figure in figures.values() if figure["log_events"]]
    return {
        "benchmark": "readers",
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "import": imported,
        "readers": figures,
        "all_readers": {
            key: round(sum(figure[key] for figure in measured), 1)
            for key in ("cpu_us_per_event", "write_transaction_us_per_event")
        },
    }
