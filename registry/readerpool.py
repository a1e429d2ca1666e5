"""Work on consecutive ranges of the database, spread over one process per core, with the
results handed back in order so that the caller can write them in order.

Each worker opens its own read-only engine (`worker_reader`) and reads its range itself:
only results cross the process boundary. Used for the work that costs more to compute than
to store: transparency-log leaves (registry.translog.catchup) and search documents
(search.parallel).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine

from registry.db import create_sync_engine

Result = TypeVar("Result")

_reader: Engine | None = None


def _init_worker(database_url: str) -> None:
    global _reader  # noqa: PLW0603 - one read-only engine per worker process
    _reader = create_sync_engine(database_url, writer=False)


def worker_reader() -> Engine:
    """Inside a pool worker: its read-only engine."""
    assert _reader is not None, "only pool workers have a reader"
    return _reader


def in_order(
    function: Callable[..., Result], tasks: Iterable[tuple[Any, ...]], database_url: str, workers: int
) -> Generator[Result, None, None]:
    """`function(*task)` for every task, run by `workers` processes with two tasks each in
    flight; results are yielded in the order of `tasks`. Closing the iterator early cancels
    the tasks that have not started (and waits for those that have)."""
    pending = deque(tasks)
    # forkserver: the caller may run an event loop and driver threads, unsafe to fork.
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(database_url,)
    )
    try:
        in_flight: deque[Future[Result]] = deque()

        def submit() -> None:
            if pending:
                in_flight.append(pool.submit(function, *pending.popleft()))

        for _ in range(2 * workers):
            submit()
        while in_flight:
            result = in_flight.popleft().result()
            submit()
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
