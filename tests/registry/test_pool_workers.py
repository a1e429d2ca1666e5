"""Worker pools across real processes: the ingest workers' write turns (`WriteTurns`) pass
in ticket order whatever order the workers get there, and on past a worker killed while
waiting for its turn; a pool's shutdown does not wait forever for a stopped worker, nor an
ordered run of tasks (`in_order`) for a hung one."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from registry.listings.ingest import WriteTurns
from registry.readerpool import in_order, shutdown_within
from registry.writequeue import InteractiveSignal
from tests.support.processes import alive

# A worker that cannot take its turn in this long is hung (a turn here takes microseconds).
HANG_SECONDS = 10.0


def _write_in_turn(turns: WriteTurns, ticket: int, written: Any) -> None:
    with turns.turn(ticket), written.get_lock():
        written[ticket] = written[ticket - 1] + 1 if ticket else 1
        time.sleep(0.05)


def _take_turn(turns: WriteTurns, ticket: int) -> None:
    with turns.turn(ticket):
        pass


def _announce_then_take_turn(turns: WriteTurns, ticket: int, started: Any) -> None:
    started.set()
    _take_turn(turns, ticket)


def _passes_on(turns: WriteTurns, ticket: int) -> bool:
    """Whether this process takes and passes on `ticket` within HANG_SECONDS."""
    done = threading.Event()

    def take() -> None:
        _take_turn(turns, ticket)
        done.set()

    threading.Thread(target=take, daemon=True).start()
    return done.wait(HANG_SECONDS)


def test_chunks_are_written_in_ticket_order_whatever_order_their_workers_arrive() -> None:
    ctx = multiprocessing.get_context("forkserver")
    turns = WriteTurns(ctx)
    # written[n] is how many chunks had been written when chunk n was: n + 1 in order.
    written = ctx.Array("q", 4)
    workers = [ctx.Process(target=_write_in_turn, args=(turns, ticket, written)) for ticket in (3, 2, 1, 0)]
    for worker in workers:
        worker.start()
        time.sleep(0.05)  # the later tickets are waiting before the first one arrives
    for worker in workers:
        worker.join(HANG_SECONDS)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert list(written) == [1, 2, 3, 4]


def test_a_worker_killed_while_waiting_for_its_turn_does_not_hang_the_others() -> None:
    ctx = multiprocessing.get_context("forkserver")
    turns = WriteTurns(ctx)
    started = ctx.Event()
    waiting = ctx.Process(target=_announce_then_take_turn, args=(turns, 1, started))
    waiting.start()
    assert started.wait(HANG_SECONDS)
    time.sleep(0.3)  # asleep in its wait for ticket 1
    assert waiting.is_alive()
    assert waiting.pid is not None
    os.kill(waiting.pid, signal.SIGKILL)
    waiting.join()

    # The holder of ticket 0 passes the turn on although its sleeper died (with a
    # Condition, notify_all waited for the dead sleeper to wake, forever) ...
    assert _passes_on(turns, 0)
    # ... and the ticket's retry, in a fresh worker, gets its turn, and so does the next.
    retry = ctx.Process(target=_take_turn, args=(turns, 1))
    retry.start()
    retry.join(HANG_SECONDS)
    assert retry.exitcode == 0
    assert _passes_on(turns, 2)


def _pid() -> int:
    time.sleep(0.2)  # long enough for each worker to take one
    return os.getpid()


def test_the_pools_shutdown_kills_a_stopped_worker_after_the_time_given() -> None:
    ctx = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=2, mp_context=ctx)
    workers = {future.result() for future in [pool.submit(_pid), pool.submit(_pid)]}
    assert len(workers) == 2
    stopped = max(workers)
    os.kill(stopped, signal.SIGSTOP)
    closing = threading.Thread(target=shutdown_within, args=(pool, 1.0), daemon=True)
    try:
        closing.start()
        closing.join(HANG_SECONDS)
        hung = closing.is_alive()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGKILL)
    assert not hung, "the shutdown waited for the stopped worker"
    assert not alive(stopped)


def _hang_on(task: int) -> int:
    if task == 1:
        time.sleep(3600)
    return task


def test_an_ordered_run_fails_rather_than_waits_for_a_hung_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    results: list[int] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            # 5 s: the stall clock runs from the first submission, and on a busy machine the
            # pool's start alone took longer than 1 s.
            results.extend(in_order(_hang_on, [(0,), (1,), (2,)], url, 2, stall_seconds=5.0))
        except TimeoutError as exc:
            failed.append(exc)

    running = threading.Thread(target=run, daemon=True)
    running.start()
    running.join(HANG_SECONDS)
    assert not running.is_alive(), "the run waited for the hung worker"
    assert results == [0]
    assert failed and "finished no task for 5 s" in str(failed[0])


def test_a_worker_waiting_for_interactive_writers_never_takes_the_counters_lock() -> None:
    """A worker killed while holding a lock shared with the server would stop every
    interactive write of the server and every batch after (a SQLite batch hung when a worker
    was killed mid-batch): the worker only reads. Here the server side holds the lock, as a
    dead worker would have: the worker's wait still ends at its timeout."""
    shared = InteractiveSignal(multiprocessing.get_context("forkserver"))
    shared.asked()  # an interactive writer waiting: the worker polls the counters
    waited: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        shared.let_earlier_pass(timeout=0.2)
        waited.append(time.monotonic() - started)

    with shared._ended.get_lock():
        worker = threading.Thread(target=wait, daemon=True)
        worker.start()
        worker.join(timeout=5)
    assert not worker.is_alive(), "the worker blocked on the counters' lock"
    assert waited and waited[0] < 2
