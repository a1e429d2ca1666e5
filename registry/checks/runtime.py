"""What the bank check keeps per process: the receipt signer, the per-bank rate limiter
(shared across processes through REGISTRY_REDIS_URL, `registry.limits`),
and on SQLite a synchronous engine whose sqlite3 connections the handler uses inline
(measured: an aiosqlite round trip costs more than the whole check's queries), with the
group commit of the query log."""

from __future__ import annotations

import asyncio
import functools
import math
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from registry.checks.receipts import ReceiptSigner
from registry.checks.services import CheckOutcome, RateLimited, record_group
from registry.checks.stores import CheckStore, SqliteStore
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


class GroupCommit:
    """Writes the query log of every check that finished reading while the previous group was
    being committed in one SQLite transaction, and only then lets their answers leave.

    Measured under load on this machine: a write transaction per single check cost more
    than the check's reads and its signature together. Each check is admitted or refused
    on its own quota (`record_group`), so one bank's refused quota does not undo another's
    log rows. An answer is sent only after the commit that holds its rows; if the commit
    fails, every check in the group fails and none is answered.

    The commit runs on its own thread, never on the event loop: BEGIN IMMEDIATE may wait
    for the write lock, and the transaction holding it (a log reader's, over aiosqlite)
    needs the event loop to finish. Waiting on the loop was a deadlock until the busy
    timeout, under concurrent checks with the background jobs on.
    """

    def __init__(self, connection: HeldConnection, queue: WriteQueue | None = None) -> None:
        self._connection = connection
        self._queue = queue
        self._pending: list[tuple[CheckOutcome, int | None, asyncio.Future[None]]] = []
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="check-log")
        self._draining: asyncio.Task[None] | None = None

    async def record(self, outcome: CheckOutcome, quota: int | None) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((outcome, quota, done))
        if self._draining is None:
            self._draining = loop.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            # Let the checks that are ready in this turn of the loop join the first group.
            await asyncio.sleep(0)
            while self._pending:
                group, self._pending = self._pending, []
                try:
                    settled = await loop.run_in_executor(
                        self._thread, self._connection.run, functools.partial(self._in_turn, group=group)
                    )
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

    def close(self) -> None:
        """After the server stopped: run the connection's close on the commit thread."""
        self._thread.submit(self._connection.close).result()
        self._thread.shutdown(wait=True)

    def _in_turn(
        self, connection: Any, *, group: list[tuple[CheckOutcome, int | None, asyncio.Future[None]]]
    ) -> list[RateLimited | None]:
        # An interactive write: the checks' answers wait for it (registry.writequeue).
        if self._queue is None:
            return self._write(connection, group=group)
        with self._queue.turn():
            return self._write(connection, group=group)

    @staticmethod
    def _write(
        connection: Any, *, group: list[tuple[CheckOutcome, int | None, asyncio.Future[None]]]
    ) -> list[RateLimited | None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            settled = record_group(SqliteStore(connection), [(outcome, quota) for outcome, quota, _ in group])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return settled


@dataclass
class CheckRuntime:
    receipts: ReceiptSigner
    sync_engine: Engine | None
    limiter: RateLimiter
    shared: SharedLimits
    reader: HeldConnection | None
    writer: HeldConnection | None
    group_commit: GroupCommit | None

    @classmethod
    def create(cls, settings: Settings, signer: RegistrySigner, shared: SharedLimits) -> CheckRuntime:
        limiter = RateLimiter(settings.checks.rate_per_second)
        if not settings.database.is_sqlite:
            return cls(ReceiptSigner(signer), None, limiter, shared, None, None, None)
        engine = create_sync_engine(settings.database.url, writer=True)
        writer = HeldConnection(engine)
        return cls(
            ReceiptSigner(signer),
            engine,
            limiter,
            shared,
            HeldConnection(engine),
            writer,
            GroupCommit(writer, write_queue(settings.database.url)),
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
        if self.group_commit is not None:
            self.group_commit.close()
        if self.sync_engine is not None:
            self.sync_engine.dispose()
