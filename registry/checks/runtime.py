"""What the bank check keeps per process: the receipt signer, the per-bank rate limiter
(shared across processes through REGISTRY_REDIS_URL, `registry.limits`), the group commit
of the query log, and on SQLite a synchronous engine whose sqlite3 connections the handler
uses inline (measured: an aiosqlite round trip costs more than the whole check's queries)."""

from __future__ import annotations

import asyncio
import functools
import math
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from registry.checks.receipts import ReceiptSigner
from registry.checks.services import CheckOutcome, RateLimited, record_group
from registry.checks.stores import CheckStore, CoreStore, SqliteStore
from registry.db import create_sync_engine, write_queue
from registry.identity.registry_key import RegistrySigner
from registry.limits import SharedLimits
from registry.settings import Settings
from registry.writequeue import WriteQueue

T = TypeVar("T")


@dataclass
class RateLimiter:
    """GCRA (the generic cell rate algorithm): each request spends 1/rate s of a one-second
    allowance per key, so a bank may burst `rate` requests and then `rate` a second.

    Written here rather than taken from the `limits` library: its in-memory storage starts
    a timer thread to expire keys, which measured ~5 ms a request on this machine; this is
    O(1) and allocation-free. In-process: with REGISTRY_REDIS_URL the same arithmetic runs
    on the shared store (`registry.limits.GCRA`), and this one counts only while it is
    unreachable. The daily quota is the exact limit, in the database.
    """

    rate: int
    _due: dict[str, float] = field(default_factory=dict)

    def wait(self, key: str) -> float:
        """0 when admitted (and counted); otherwise the seconds until it would be."""
        now = time.monotonic()
        due = max(self._due.get(key, now), now) + 1.0 / self.rate
        if due - now > 1.0:
            return due - now - 1.0
        self._due[key] = due
        return 0.0


class HeldConnection:
    """One sqlite3 connection kept checked out of the engine's pool for the process's life.

    The check's database work runs inline on the event-loop thread and never interleaves,
    so one connection each for reads and for the group commit is enough; checking a pooled
    connection out and back in (with its reset) cost ~40 µs a request. A connection that
    raised a driver error is dropped, and the next use opens a fresh one.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pooled: Any = None

    def run(self, work: Callable[[Any], T]) -> T:
        if self._pooled is None:
            self._pooled = self._engine.raw_connection()
        try:
            return work(self._pooled.driver_connection)
        except sqlite3.Error:
            self._pooled.invalidate()
            self._pooled = None
            raise

    def close(self) -> None:
        if self._pooled is not None:
            self._pooled.close()
            self._pooled = None


Check = tuple[CheckOutcome, int | None]
Committer = Callable[[list[Check]], Awaitable[list[RateLimited | None]]]


class GroupCommit:
    """Writes the query log of every check that finished reading while the previous group was
    being committed in one transaction, and only then lets their answers leave.

    Measured under load on this machine: a write transaction per single check cost more
    than the check's reads and its signature together on SQLite; on PostgreSQL a bank's
    checks waited in line for each other's quota row lock through each commit and its WAL
    flush (156-168 checks/s against a bare route's 2,200). Each check is admitted or
    refused on its own quota (`record_group`), so one bank's refused quota does not undo
    another's log rows. An answer is sent only after the commit that holds its rows; if
    the commit fails, every check in the group fails and none is answered.
    """

    def __init__(self, commit: Committer) -> None:
        self._commit = commit
        self._pending: list[tuple[CheckOutcome, int | None, asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def record(self, outcome: CheckOutcome, quota: int | None) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((outcome, quota, done))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        try:
            # Let the checks that are ready in this turn of the loop join the first group.
            await asyncio.sleep(0)
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    settled = await self._commit([(outcome, quota) for outcome, quota, _ in group])
                except Exception as exc:  # every check of the group fails with the commit
                    for _, _, done in group:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for (_, _, done), refusal in zip(group, settled, strict=True):
                    if done.done():
                        continue
                    if refusal is None:
                        done.set_result(None)
                    else:
                        done.set_exception(refusal)
        finally:
            self._draining = None


class LogWriter:
    """Runs the group commit's transaction on a thread of its own, never on the event loop.

    On SQLite, BEGIN IMMEDIATE may wait for the write lock, and the transaction holding it
    (a log reader's, over aiosqlite) needs the event loop to finish: waiting on the loop was
    a deadlock until the busy timeout, under concurrent checks with the background jobs on.
    On PostgreSQL, on the loop each of the transaction's round trips waited for a turn of a
    loop busy with the other checks: measured, a group's commit took 34 ms (median) there,
    with the quota's row locks held throughout.
    """

    def __init__(
        self, transact: Callable[[list[Check]], list[RateLimited | None]], close: Callable[[], None]
    ) -> None:
        self._transact = transact
        self._close = close
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="check-log")

    @classmethod
    def on_sqlite(cls, engine: Engine, connection: HeldConnection, queue: WriteQueue | None) -> LogWriter:
        def in_turn(group: list[Check]) -> list[RateLimited | None]:
            # An interactive write: the checks' answers wait for it (registry.writequeue).
            if queue is None:
                return connection.run(functools.partial(_sqlite_transaction, group=group))
            with queue.turn():
                return connection.run(functools.partial(_sqlite_transaction, group=group))

        def close() -> None:
            connection.close()
            engine.dispose()

        return cls(in_turn, close)

    @classmethod
    def on_engine(cls, engine: Engine) -> LogWriter:
        def transaction(group: list[Check]) -> list[RateLimited | None]:
            with engine.begin() as conn:
                return record_group(CoreStore(conn), group)

        return cls(transaction, engine.dispose)

    async def __call__(self, group: list[Check]) -> list[RateLimited | None]:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transact, group)

    def close(self) -> None:
        """After the server stopped: release the connections on the commit thread."""
        self._thread.submit(self._close).result()
        self._thread.shutdown(wait=True)


def _sqlite_transaction(connection: Any, *, group: list[Check]) -> list[RateLimited | None]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        settled = record_group(SqliteStore(connection), group)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return settled


@dataclass
class CheckRuntime:
    receipts: ReceiptSigner
    limiter: RateLimiter
    shared: SharedLimits
    log_writer: LogWriter
    group_commit: GroupCommit
    # SQLite only: the connection the check reads on inline, on the event loop's thread.
    reader: HeldConnection | None = None

    @classmethod
    def create(cls, settings: Settings, signer: RegistrySigner, shared: SharedLimits) -> CheckRuntime:
        limiter = RateLimiter(settings.checks.rate_per_second)
        engine = create_sync_engine(settings.database.url, writer=True)
        if not settings.database.is_sqlite:
            writer = LogWriter.on_engine(engine)
            return cls(ReceiptSigner(signer), limiter, shared, writer, GroupCommit(writer))
        writer = LogWriter.on_sqlite(engine, HeldConnection(engine), write_queue(settings.database.url))
        return cls(
            ReceiptSigner(signer), limiter, shared, writer, GroupCommit(writer), HeldConnection(engine)
        )

    def throttle(self, client_id: str) -> None:
        # Shared by every process when the store answers; counted here when it does not (a
        # bank's checks keep working through a Redis restart: the daily quota stays exact).
        wait = self.shared.gcra_wait(f"bank:{client_id}", self.limiter.rate)
        if wait is None:
            wait = self.limiter.wait(client_id)
        if wait > 0:
            raise RateLimited(
                "rate_limited",
                f"at most {self.limiter.rate} check requests a second per bank",
                max(1, math.ceil(wait)),
            )

    def statement_on_sqlite(self, work: Callable[[CheckStore], T]) -> T:
        """Run `work`, a single statement, on the held sqlite3 connection: outside a
        transaction a statement is its own snapshot, so BEGIN and COMMIT around it would only
        add two driver calls to every check (the bank key's lookup, the check's read)."""
        assert self.reader is not None
        return self.reader.run(lambda connection: work(SqliteStore(connection)))

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        # Last: on SQLite it disposes of the engine the reader's connection came from.
        self.log_writer.close()
