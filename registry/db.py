"""Database engines and the declarative base.

Writers on SQLite start with BEGIN IMMEDIATE: a deferred transaction that reads and then
writes can fail with SQLITE_BUSY when another writer got there first, without waiting. And
each first takes its turn in the process's write queue (`registry.writequeue`), so that the
process's writers go one after another instead of racing at SQLite's busy handler.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlencode

import anyio
import msgspec
from sqlalchemy import Connection, Engine, MetaData, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from registry.settings import SSL_FILES, postgres_options
from registry.writequeue import WriteQueue, on_event_loop_thread, queue_for

# Stable constraint names, so that migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def json_text(value: Any) -> str:
    # msgspec: about five times the standard library's speed on the ingest hot path.
    return msgspec.json.encode(value).decode()


# Reading back, msgspec too: json.loads took a third of an export's time (measured).
_JSON_OPTIONS: dict[str, Any] = {"json_serializer": json_text, "json_deserializer": msgspec.json.decode}


def dialect_insert(conn: Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say ON CONFLICT, in the dialect of `conn`: PostgreSQL's or SQLite's,
    the two databases the registry runs on (their upserts are spelled alike)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def sqlite_path(url: str) -> Path | None:
    marker = ":///"
    if not url.startswith("sqlite") or marker not in url:
        return None
    path = url.split(marker, 1)[1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file readable by its owner only (0600) before SQLite does
    (which would use the umask, typically 0644). SQLite gives its -wal, -shm and journal
    files the database file's permissions, so they follow. An existing file is left as it is."""
    path = sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (sqlite3, psycopg)."""
    return url.replace("sqlite+aiosqlite:", "sqlite:").replace("postgresql+asyncpg:", "postgresql+psycopg:")


def write_queue(url: str) -> WriteQueue | None:
    """The process's write queue for this database: None unless it is a SQLite file."""
    path = sqlite_path(url)
    return queue_for(path) if path is not None else None


def create_sync_engine(url: str, *, writer: bool = True, background: bool = False) -> Engine:
    """For worker processes that prepare and store ingest chunks, worker threads, and tests.
    `background`: its writes give way to interactive ones in the write queue."""
    url = sync_url(url)
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = sa_create_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **_JSON_OPTIONS)
        queue = write_queue(url) if writer else None
        _configure_sqlite(engine, immediate=writer, queue=queue, background=background)
        if queue is not None:
            _give_turns_back(engine, queue)
        return engine
    # Pre-ping: a worker's pooled connection may have been cut since its last chunk.
    return sa_create_engine(url, pool_size=2, pool_pre_ping=True, hide_parameters=True, **_JSON_OPTIONS)


def asyncpg_arguments(url: str) -> tuple[URL, dict[str, Any]]:
    """A PostgreSQL URL for the asyncpg dialect, and the arguments of asyncpg's connect() that
    say what the libpq options of its query say (`registry.settings.postgres_options`): the
    query as operators write it, which psycopg hands to libpq, reached asyncpg's connect() as
    keywords it does not take (TypeError: sslmode). `host` and `port` stay in the URL (the
    dialect passes them on); search-style queries get custom plans (prepared generic plans
    are slow for short patterns)."""
    parsed = make_url(url)
    options = postgres_options(parsed.render_as_string(hide_password=True).partition("?")[2])
    server_settings = {"plan_cache_mode": "force_custom_plan"}
    arguments: dict[str, Any] = {"server_settings": server_settings}
    if "application_name" in options:
        server_settings["application_name"] = options["application_name"]
    if "sslmode" in options:
        arguments["ssl"] = options["sslmode"]  # asyncpg takes libpq's mode names
    # libpq's certificate and key files reach asyncpg in a DSN, which it reads as libpq does
    # (its other connection parameters given as keywords, which win over the DSN's).
    files = {name: options[name] for name in SSL_FILES if name in options}
    if files:
        arguments["dsn"] = "postgresql://?" + urlencode(files)
    # libpq: 0 is no limit (psycopg: its default), less than 2 is 2. asyncpg: its default, 60 s.
    timeout = int(options.get("connect_timeout", "0"))
    if timeout > 0:
        arguments["timeout"] = max(2, timeout)
    kept = {name: value for name, value in parsed.query.items() if name in ("host", "port")}
    return parsed.set(query=kept), arguments


def create_engine(url: str, *, writer: bool) -> AsyncEngine:
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True, **_JSON_OPTIONS)
        _configure_sqlite(engine, immediate=writer)
        return engine
    asyncpg_url, connect_args = asyncpg_arguments(url)
    engine = create_async_engine(
        asyncpg_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        **_JSON_OPTIONS,
        hide_parameters=True,  # statement parameters hold personal data: keep them out of errors
        connect_args=connect_args,
    )
    event.listen(engine.sync_engine, "do_connect", _connect_asyncpg)
    return engine


def _connect_asyncpg(dialect: Dialect, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
    """asyncpg's connect(), its TLS failures (the server refused TLS, a certificate did not
    verify) raised as the driver's OperationalError: asyncpg raises them unwrapped, as a bare
    ConnectionError or ssl.SSLError, which the service answered with a 500 or a traceback.
    Wrapped, they are the database being unavailable (503; one line in the CLI), as the same
    failure is from psycopg. Refused and timed-out connections stay as asyncpg raises them."""
    try:
        return dialect.connect(*cargs, **cparams)
    except (ConnectionError, ssl.SSLError) as exc:
        if type(exc) is not ConnectionError and not isinstance(exc, ssl.SSLError):
            raise
        raise dialect.loaded_dbapi.OperationalError(str(exc) or type(exc).__name__, exc) from exc


def _configure_sqlite(
    engine: AsyncEngine | Engine,
    *,
    immediate: bool,
    queue: WriteQueue | None = None,
    background: bool = False,
) -> None:
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the driver so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # The blind index takes random inserts: keep its pages cached (64 MiB, not 2 MiB).
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if queue is not None:
            _take_turn(connection, queue, background=background)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
        except BaseException:
            if queue is not None and connection.info.pop(_TURN, False):
                queue.release()
            raise


_TURN = "registry.write_turn"


def _take_turn(connection: Any, queue: WriteQueue, *, background: bool) -> None:
    """Before BEGIN IMMEDIATE: wait for this transaction's turn in `queue`, noted on the
    connection so that its end gives the turn back (`_give_turns_back`)."""
    # On an event loop's thread, waiting would stop the loop that the holder may need:
    # take a free turn or go on without one.
    if on_event_loop_thread():
        if queue.try_acquire():
            connection.info[_TURN] = True
    elif queue.acquire(background=background):
        connection.info[_TURN] = True


def _give_turns_back(engine: Engine, queue: WriteQueue) -> None:
    """A write transaction of `engine` holds its turn until just after its COMMIT or
    ROLLBACK. (The async engine's turns are taken in `Database.write`, which can await.)"""

    def end(connection: Any, finish: str) -> None:
        if not connection.info.pop(_TURN, False):
            return
        try:
            # The commit (or rollback) happens here, before the turn is passed on: SQLAlchemy
            # emits its own right after these hooks, then a no-op (no transaction is open).
            getattr(connection.connection.dbapi_connection, finish)()
        finally:
            queue.release()

    event.listen(engine, "commit", lambda connection: end(connection, "commit"))
    event.listen(engine, "rollback", lambda connection: end(connection, "rollback"))

    def lost(_dbapi_connection: Any, record: Any, *_args: Any) -> None:
        # A connection checked in or invalidated still holding a turn (cut mid-transaction):
        # the turn must not be lost with it.
        if record.info.pop(_TURN, False):
            queue.release()

    event.listen(engine, "checkin", lost)
    event.listen(engine, "invalidate", lost)


P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """The engines the service uses: writers and readers (the same pool on PostgreSQL), and a
    synchronous writer for work that runs in worker threads.

    `read` and `write` run one synchronous function of a `Connection` (the services' style)
    in a read connection or a write transaction: the one way handlers and jobs reach storage.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.writer = create_engine(url, writer=True)
        self.reader = create_engine(url, writer=False) if self.is_sqlite else self.writer
        self._sync_writer: Engine | None = None
        self._sync_reader: Engine | None = None
        # SQLite: the process's writers take turns (registry.writequeue); None on PostgreSQL.
        self.write_queue = write_queue(url)

    @property
    def sync_writer(self) -> Engine:
        """A synchronous writer engine, made on first use, for work that runs in a worker
        thread (the search engine's follower and reconciler): background writes, which give
        way to interactive ones in the write queue."""
        if self._sync_writer is None:
            self._sync_writer = create_sync_engine(self.url, background=True)
        return self._sync_writer

    async def read(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        async with self.reader.connect() as conn:
            return await conn.run_sync(work, *args, **kwargs)

    async def read_statement(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`read` for work that runs a single statement, which is its own snapshot: on
        PostgreSQL in autocommit, without the round trips of BEGIN and ROLLBACK around it
        (the bank check's two reads, on the hot path)."""
        async with self.reader.connect() as conn:
            if not self.is_sqlite:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            return await conn.run_sync(work, *args, **kwargs)

    @property
    def sync_reader(self) -> Engine:
        """A synchronous reader engine, made on first use: on PostgreSQL the synchronous
        writer's pool (as `reader` is `writer` there), on SQLite connections that never take
        the write lock."""
        if not self.is_sqlite:
            return self.sync_writer
        if self._sync_reader is None:
            self._sync_reader = create_sync_engine(self.url, writer=False)
        return self._sync_reader

    async def read_in_thread(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`read` in a worker thread on the synchronous reader, for reads that are mostly
        Python work (the agency push renders thousands of events a range): on the async
        engine that work runs on the event loop, and every request waits for it."""
        # Made here, on the loop's thread: threads asking at once would each make one.
        engine = self.sync_reader

        def run() -> T:
            with engine.connect() as conn:
                return work(conn, *args, **kwargs)

        return await anyio.to_thread.run_sync(run)

    async def write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """In one transaction, committed when `work` returns, rolled back when it raises."""
        async with self._turn(background=False), self.writer.begin() as conn:
            return await conn.run_sync(work, *args, **kwargs)

    async def write_behind(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`write` for background work (the log's followers): on SQLite it gives way to
        interactive writes waiting for their turn, within the queue's bound."""
        async with self._turn(background=True), self.writer.begin() as conn:
            return await conn.run_sync(work, *args, **kwargs)

    def _turn(self, *, background: bool) -> AbstractAsyncContextManager[None]:
        if self.write_queue is None:
            return nullcontext()
        return self.write_queue.turn_async(background=background)

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()
        if self._sync_writer is not None:
            self._sync_writer.dispose()
        if self._sync_reader is not None:
            self._sync_reader.dispose()
