"""Waking the log's followers when a commit appends events, instead of waiting for their
next interval.

A removal must leave every public surface within seconds; followers that poll the log every
0.5-1 s add up to their interval to every surface (the indexer, the feeds' reader, the push
worker), and more while a batch keeps them busy. So every commit of a transaction that
appended events (`registry.eventlog.services.append_events` marks the connection) calls the
listeners registered here once it is done, in the process that committed; the scheduler
(`service.scheduler`) runs the jobs that ask for it (`Job.wake_on_log`) at once, or once more
right after the run in progress.

Across processes, on PostgreSQL: the same transaction sends `NOTIFY registry_log`, which
the server delivers at commit to every process listening (`log_notifications`, a resource
of each web and worker process), so a worker's followers wake for a removal a web process
committed. Intervals stay the fallback: on SQLite (one process), or while the listening
connection is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.pool import Pool

from registry.db import asyncpg_arguments

if TYPE_CHECKING:
    from registry.runtime import Services

logger = logging.getLogger("registry.eventlog.wake")

_MARK = "registry.log_appended"
_COMMITTED = "registry.log_appended_committed"
CHANNEL = "registry_log"
_listeners: list[Callable[[], bool]] = []


def mark_appended(conn: Connection) -> None:
    """Called by `append_events` in the caller's transaction."""
    conn.info[_MARK] = True
    if conn.dialect.name == "postgresql":
        # Delivered at commit only, once per transaction (PostgreSQL folds repeats).
        conn.execute(text(f"NOTIFY {CHANNEL}"))


def on_log_appended(listener: Callable[[], bool]) -> None:
    """`listener()` after every commit that appended events in this process; it returns
    False once it no longer wants to be called (its scheduler stopped)."""
    _listeners.append(listener)


def _notify() -> None:
    for listener in list(_listeners):
        try:
            keep = listener()
        except Exception:  # a waker must never fail the work that woke it
            logger.exception("a log follower's waker failed")
            keep = True
        if not keep:
            _listeners.remove(listener)


# SQLAlchemy's `commit` event comes before the database's commit: a follower woken then
# could read the log before the events are visible and go back to sleep. So the commit only
# moves the mark, and the listeners are called once the commit is done: when the connection
# goes back to the pool, or begins its next transaction, whichever comes first.


def _committed(conn: Connection) -> None:
    if conn.info.pop(_MARK, False):
        conn.info[_COMMITTED] = True


def _began(conn: Connection) -> None:
    conn.info.pop(_MARK, None)
    if conn.info.pop(_COMMITTED, False):
        _notify()


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    if record is not None and record.info.pop(_COMMITTED, False):
        _notify()


def _rolled_back(conn: Connection) -> None:
    if conn.invalidated:
        # Its DBAPI connection is gone, the mark with it (a new one starts with empty info);
        # reading `info` would raise PendingRollbackError over what invalidated it (Ctrl-C).
        return
    conn.info.pop(_MARK, None)


event.listen(Engine, "commit", _committed)
event.listen(Engine, "begin", _began)
event.listen(Engine, "rollback", _rolled_back)
event.listen(Pool, "checkin", _checked_in)


# Between attempts to listen again after the connection was lost: doubling up to this.
RELISTEN_MAX_SECONDS = 30.0


@asynccontextmanager
async def log_notifications(services: Services) -> AsyncIterator[None]:
    """For the process's life, on PostgreSQL: LISTEN for other processes' commits to the log
    and wake this process's followers. Without it they still run at their intervals. A lost
    connection (a PostgreSQL restart or failover) is listened on again, backing off, with one
    log line when it is lost and one when it is back: it stayed lost until a restart, every
    follower on its interval. Closing it at the end is no loss, and says nothing."""
    if services.db.is_sqlite:
        yield
        return
    # As the async engine connects: the URL's libpq options (sslmode, application_name, ...)
    # in asyncpg's words (the URL as written was refused for connect_timeout).
    url, arguments = asyncpg_arguments(services.settings.database.url)
    closing = False
    lost = asyncio.Event()
    current: list[asyncpg.Connection] = []

    async def listen() -> asyncpg.Connection:
        connection = await asyncpg.connect(
            host=url.query.get("host") or url.host,
            port=url.query.get("port") or url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            **arguments,
        )
        await connection.add_listener(CHANNEL, lambda *_: _notify())
        connection.add_termination_listener(lambda *_: lost.set())
        return connection

    async def keep_listening() -> None:
        delay, down = 1.0, False
        while not closing:
            try:
                connection = await listen()
            except Exception as exc:  # any failure to listen (a connection cut mid-way too): retry
                if not down:
                    logger.warning(
                        "log notifications unavailable (%s): followers run at their intervals", exc
                    )
                    down = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RELISTEN_MAX_SECONDS)
                continue
            current[:] = [connection]
            if down:
                logger.warning("log notifications back")
                _notify()  # what was committed meanwhile: the followers look now
            delay, down = 1.0, False
            lost.clear()
            await lost.wait()
            if closing:
                return
            logger.warning("log notifications lost: followers run at their intervals until they are back")
            down = True
            with contextlib.suppress(Exception):
                connection.terminate()

    keeper = asyncio.create_task(keep_listening(), name="log-notifications")
    try:
        yield
    finally:
        closing = True
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await keeper
        for connection in current:
            with contextlib.suppress(Exception):
                await connection.close(timeout=5)
