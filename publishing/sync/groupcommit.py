"""Group commit for the deliveries a process runs side by side: the cursor moves, lease
renewals and releases they ask for at about the same moment go into one write transaction.

On SQLite every write transaction queues for the one writer (behind the log readers' own
transactions); three subscriptions in step used to take three turns per batch for their
cursors and three more for their releases. Each write keeps its own condition (the cursor
it moves from, the lease it holds) and its own answer, so nothing is weaker than with a
transaction each: a write is asked for only after what it records happened (a 2xx), and its
caller goes on only once it is committed. While one transaction runs, the writes asked for
meanwhile gather for the next. Should one of them raise, the transaction is rolled back and
each is run alone, so that the error reaches its own caller only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection

from registry.db import Database

P = ParamSpec("P")
T = TypeVar("T")

Work = Callable[[Connection], Any]


class GroupCommit:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._queue: list[tuple[Work, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.writes = 0
        self.transactions = 0

    async def write(
        self, work: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`work(conn, *args, **kwargs)` in a write transaction shared with the writes asked
        for meanwhile; returns once committed. A caller cancelled while it waits does not
        withdraw its write (a release in a `finally` still happens)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        done.add_done_callback(_retrieve)

        def bound(conn: Connection) -> T:
            return work(conn, *args, **kwargs)

        self._queue.append((bound, done))
        self.writes += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        # One turn of the loop first: deliveries woken by the same answers join this one.
        await asyncio.sleep(0)
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._commit(batch)
            except BaseException:
                for _, done in batch + self._queue:
                    if not done.done():
                        done.cancel()
                self._queue = []
                raise

    async def _commit(self, batch: list[tuple[Work, asyncio.Future[Any]]]) -> None:
        self.transactions += 1
        try:
            results = await self._db.write(_run_all, [work for work, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for work, done in batch:
                await self._alone(work, done)
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)

    async def _alone(self, work: Work, done: asyncio.Future[Any]) -> None:
        self.transactions += 1
        try:
            result = await self._db.write(work)
        except Exception as exc:
            if not done.done():
                done.set_exception(exc)
            return
        if not done.done():
            done.set_result(result)

    async def aclose(self) -> None:
        """Let the writes already asked for commit (shutdown: releases of cancelled deliveries)."""
        if self._flusher is not None and not self._flusher.done():
            await asyncio.gather(self._flusher, return_exceptions=True)


def _run_all(conn: Connection, works: list[Work]) -> list[Any]:
    return [work(conn) for work in works]


def _retrieve(done: asyncio.Future[Any]) -> None:
    # A caller cancelled while waiting never reads its write's error: not an unretrieved one.
    if not done.cancelled():
        done.exception()
