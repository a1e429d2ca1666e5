"""What the bank check keeps per process: the receipt signer, the per-bank rate limiter,
and on SQLite a synchronous engine whose sqlite3 connections the handler uses inline
(measured: an aiosqlite round trip costs more than the whole check's queries), with the
group commit of the query log."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine

from registry.checks.receipts import ReceiptSigner
from registry.checks.services import CheckOutcome, RateLimited, record
from registry.checks.stores import CheckStore, SqliteStore
from registry.db import create_sync_engine
from registry.identity.registry_key import RegistrySigner
from registry.settings import Settings

T = TypeVar("T")


@dataclass
class RateLimiter:
    """GCRA (the generic cell rate algorithm): each request spends 1/rate s of a one-second
    allowance per key, so a bank may burst `rate` requests and then `rate` a second.

    Written here rather than taken from the `limits` library: its in-memory storage starts
    a timer thread to expire keys, which measured ~5 ms a request on this machine; this is
    O(1) and allocation-free. Per process: the daily quota is the exact, shared limit.
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


class GroupCommit:
    """Writes the query log of every check that finished reading in the same event-loop
    turn in one SQLite transaction, and only then lets their answers leave.

    Measured under load on this machine: a write transaction per single check cost more
    than the check's reads and its signature together. Each check keeps its own savepoint,
    so one bank's refused quota does not undo another's log rows. An answer is sent only
    after the commit that holds its rows; if the commit fails, every check in the group
    fails (500) and none is answered.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pending: list[tuple[CheckOutcome, int | None, asyncio.Future[None]]] = []

    async def record(self, outcome: CheckOutcome, quota: int | None) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            # After the callbacks already due: the checks that are ready now join this group.
            loop.call_soon(self._flush)
        self._pending.append((outcome, quota, done))
        await done

    def _flush(self) -> None:
        group, self._pending = self._pending, []
        pooled = self._engine.raw_connection()
        try:
            connection = pooled.driver_connection
            if connection is None:  # only after close(), which happens below
                raise RuntimeError("the pooled SQLite connection is closed")
            settled = self._write(connection, group)
        except Exception as exc:
            for _, _, done in group:
                if not done.done():
                    done.set_exception(exc)
            return
        finally:
            pooled.close()
        for (_, _, done), refusal in zip(group, settled, strict=True):
            if done.cancelled():
                continue
            if refusal is None:
                done.set_result(None)
            else:
                done.set_exception(refusal)

    @staticmethod
    def _write(
        connection: Any, group: list[tuple[CheckOutcome, int | None, asyncio.Future[None]]]
    ) -> list[RateLimited | None]:
        store = SqliteStore(connection)
        settled: list[RateLimited | None] = []
        connection.execute("BEGIN IMMEDIATE")
        try:
            for outcome, quota, _ in group:
                connection.execute("SAVEPOINT check_log")
                try:
                    record(store, outcome, quota)
                except RateLimited as refusal:
                    connection.execute("ROLLBACK TO check_log")
                    settled.append(refusal)
                else:
                    settled.append(None)
                connection.execute("RELEASE check_log")
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
    group_commit: GroupCommit | None

    @classmethod
    def create(cls, settings: Settings, signer: RegistrySigner) -> CheckRuntime:
        engine = create_sync_engine(settings.database_url, writer=True) if settings.is_sqlite else None
        return cls(
            ReceiptSigner(signer),
            engine,
            RateLimiter(settings.check_rate_per_second),
            GroupCommit(engine) if engine is not None else None,
        )

    def throttle(self, client_id: str) -> None:
        wait = self.limiter.wait(client_id)
        if wait > 0:
            raise RateLimited(
                "rate_limited",
                f"at most {self.limiter.rate} check requests a second per bank",
                max(1, math.ceil(wait)),
            )

    def read_on_sqlite(self, work: Callable[[CheckStore], T]) -> T:
        """Run `work` in one read transaction (one snapshot) on a pooled sqlite3 connection."""
        assert self.sync_engine is not None
        pooled = self.sync_engine.raw_connection()
        try:
            connection = pooled.driver_connection
            if connection is None:  # only after close(), which happens below
                raise RuntimeError("the pooled SQLite connection is closed")
            connection.execute("BEGIN")
            try:
                return work(SqliteStore(connection))
            finally:
                connection.execute("COMMIT")
        finally:
            pooled.close()

    def close(self) -> None:
        if self.sync_engine is not None:
            self.sync_engine.dispose()
