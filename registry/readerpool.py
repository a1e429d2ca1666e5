"""Work on consecutive ranges of the database, spread over one process per core, with the
results handed back in order so that the caller can write them in order.

Each worker opens its own read-only engine (`worker_reader`) and reads its range itself:
only results cross the process boundary. Used for the work that costs more to compute than
to store: transparency-log leaves (registry.translog.catchup) and search documents
(search.parallel).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine

from registry.db import create_sync_engine

Result = TypeVar("Result")
logger = logging.getLogger("registry.readerpool")
# A task (a range of thousands of rows) takes seconds: one not done in this long is stuck.
STALL_SECONDS = 600.0

_reader: Engine | None = None


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL the pool's workers (a stopped one too): the executor then fails every task
    it holds with BrokenProcessPool. `_processes` is the executor's own table of them."""
    for process in list((pool._processes or {}).values()):
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def shutdown_within(pool: ProcessPoolExecutor, seconds: float) -> None:
    """Shut the pool down, its workers finishing what they hold, for at most `seconds`; then
    kill them: a stopped or hung worker never takes its turn to exit, and a plain
    `shutdown(wait=True)` waited for it forever."""
    closing = threading.Thread(target=pool.shutdown, kwargs={"wait": True}, name="pool-shutdown", daemon=True)
    closing.start()
    closing.join(seconds)
    if closing.is_alive():
        logger.error("pool workers did not exit within %.0f s: killing them", seconds)
        kill_workers(pool)
        closing.join()


def _init_worker(database_url: str) -> None:
    global _reader  # noqa: PLW0603 - one read-only engine per worker process
    _reader = create_sync_engine(database_url, writer=False)


def worker_reader() -> Engine:
    """Inside a pool worker: its read-only engine."""
    assert _reader is not None, "only pool workers have a reader"
    return _reader


def in_order(
    function: Callable[..., Result],
    tasks: Iterable[tuple[Any, ...]],
    database_url: str,
    workers: int,
    *,
    stall_seconds: float = STALL_SECONDS,
) -> Generator[Result, None, None]:
    """`function(*task)` for every task, run by `workers` processes with two tasks each in
    flight; results are yielded in the order of `tasks`. Closing the iterator early cancels
    the tasks that have not started (and waits for those that have, `stall_seconds` at
    most); a task not done `stall_seconds` after the one before raises TimeoutError."""
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
            try:
                result = in_flight.popleft().result(timeout=stall_seconds)
            except TimeoutError:
                # A worker stopped or hung (the executor sees deaths only): fail, do not hang.
                kill_workers(pool)
                raise TimeoutError(f"a pool worker finished no task for {stall_seconds:.0f} s") from None
            submit()
            yield result
    finally:
        for future in in_flight:  # not started yet: not run at all
            future.cancel()
        shutdown_within(pool, stall_seconds)
