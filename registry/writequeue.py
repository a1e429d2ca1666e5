"""One queue for a process's writers to a SQLite database: turns, in order, so that only
one of them at a time waits at SQLite's busy handler.

SQLite has one write lock, and a writer that finds it taken sleeps in growing steps (up to
100 ms) and retries: the writer that asks right after a commit wins, whoever waited
longest. A traced batch (docs/benchmarks.md, "Removal to gone everywhere") showed a
removal waiting up to 5.8 s for BEGIN IMMEDIATE, mostly behind the server's own writers
(its async pool, the follower threads, the check log's group commit) rather than the
ingest workers. Here each writer of the process takes a turn before it begins and gives it
back when its transaction ends; the turn is handed to the next waiter directly, so no one
can barge in.

Two classes: interactive writes (requests: removals, amendments, the check log) go before
background ones (the log's followers, the reconciler), but a waiting background writer is
passed over at most `URGENT_IN_A_ROW` times, so neither class starves.

Usable from threads (`acquire`, blocking) and from the event loop (`acquire_async`, which
never blocks the loop: it awaits a future the releasing thread resolves). A writer that
cannot get its turn within the timeout goes on without one (to SQLite's busy handler, as
before): a turn is an optimisation, never a new way to deadlock. PostgreSQL locks rows,
not the database, and never uses this.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Background writers passed over at most this many times in a row by interactive ones.
URGENT_IN_A_ROW = 2
# SQLite's own busy timeout (registry.db): after that long a writer would fail anyway.
TURN_TIMEOUT_SECONDS = 30.0
# How long an ingest worker lets earlier interactive writers go first, at most, and how often
# it looks (`InteractiveSignal`): an interactive transaction takes milliseconds.
YIELD_TIMEOUT_SECONDS = 1.0
YIELD_POLL_SECONDS = 0.002


@dataclass(eq=False)
class _Waiter:
    background: bool
    event: threading.Event | None = None
    future: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    granted: bool = field(default=False)

    def wake(self) -> bool:
        """False if the waiter cannot be woken (its event loop has closed)."""
        if self.event is not None:
            self.event.set()
            return True
        assert self.loop is not None and self.future is not None
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class InteractiveSignal:
    """What a process's interactive writers tell the ingest workers it started (other
    processes, outside its queue): two counters in shared memory, the interactive turns
    asked for and those ended. A worker about to begin a chunk's transaction first lets the
    interactive writers that have asked by then have the database (`let_earlier_pass`).

    Without it a removal sent during a batch waited at SQLite's busy handler, which sleeps
    up to 100 ms between tries, while the workers, handing their chunk turns straight on,
    took the lock again and again: the removal's request p99 was 0.7 s (docs/benchmarks.md).
    Later arrivals do not extend a worker's wait, and the wait is bounded, so a stream of
    checks cannot stop a batch."""

    def __init__(self, mp_context: Any) -> None:
        self._asked = mp_context.Value("q", 0)
        self._ended = mp_context.Value("q", 0)

    def asked(self) -> None:
        with self._asked.get_lock():
            self._asked.value += 1

    def ended(self) -> None:
        with self._ended.get_lock():
            self._ended.value += 1

    def let_earlier_pass(self, timeout: float = YIELD_TIMEOUT_SECONDS) -> None:
        """Return once every interactive turn asked for before this call has ended (or after
        `timeout`)."""
        # Read without the counters' locks (an aligned 64-bit read is whole): only the
        # starting process writes them, under the lock, and a worker killed while holding it
        # would have stopped every interactive write of that process, and every batch after.
        asked, ended = self._asked.get_obj(), self._ended.get_obj()
        target = asked.value
        deadline = time.monotonic() + timeout
        while ended.value < target and time.monotonic() < deadline:
            time.sleep(YIELD_POLL_SECONDS)


class WriteQueue:
    """A fair lock with hand-off: `release` gives the turn to the next waiter itself."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False
        self._held_interactive = False
        self._urgent: deque[_Waiter] = deque()
        self._background: deque[_Waiter] = deque()
        self._urgent_in_a_row = 0
        # Set once this process starts ingest workers (`registry.listings.ingest`).
        self.signal: InteractiveSignal | None = None

    def _enter(self, waiter: _Waiter) -> bool:
        """Under the lock: take the turn if it is free and no one waits, else join the queue."""
        if not self._held and not self._urgent and not self._background:
            self._held = True
            self._held_interactive = not waiter.background
            waiter.granted = True
            return True
        (self._background if waiter.background else self._urgent).append(waiter)
        return False

    def _withdraw(self, waiter: _Waiter) -> bool:
        """Under the lock: leave the queue; True if the turn was handed over meanwhile."""
        if waiter.granted:
            return True
        (self._background if waiter.background else self._urgent).remove(waiter)
        return False

    def try_acquire(self) -> bool:
        """The turn if it is free now, without waiting (for code on the event loop's thread).
        Never joins the queue: a waiter nobody can wake would be handed the next turn."""
        with self._lock:
            if self._held or self._urgent or self._background:
                return False
            self._held = True
            return True

    def acquire(self, *, background: bool = False, timeout: float = TURN_TIMEOUT_SECONDS) -> bool:
        """Wait for the turn (blocking: threads only); False if it did not come in time."""
        waiter = _Waiter(background, event=threading.Event())
        self._asked(waiter)
        with self._lock:
            if self._enter(waiter):
                return True
        assert waiter.event is not None
        if waiter.event.wait(timeout):
            return True
        with self._lock:
            granted = self._withdraw(waiter)
        if not granted:
            self._ended(waiter)
        return granted

    async def acquire_async(self, *, background: bool = False, timeout: float = TURN_TIMEOUT_SECONDS) -> bool:
        """`acquire` for the event loop: awaits, never blocks the loop's thread."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(background, future=loop.create_future(), loop=loop)
        self._asked(waiter)
        with self._lock:
            if self._enter(waiter):
                return True
        assert waiter.future is not None
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            with self._lock:
                granted = self._withdraw(waiter)  # True: handed over just as the wait ended
            if not granted:
                self._ended(waiter)
            return granted
        except BaseException:  # cancelled: a turn handed over meanwhile goes to the next
            with self._lock:
                granted = self._withdraw(waiter)
            if granted:
                self.release()
            else:
                self._ended(waiter)
            raise
        return True

    def _asked(self, waiter: _Waiter) -> None:
        if not waiter.background and self.signal is not None:
            self.signal.asked()

    def _ended(self, waiter: _Waiter) -> None:
        if not waiter.background and self.signal is not None:
            self.signal.ended()

    def release(self) -> None:
        """End this turn: hand it to the next waiter, or leave it free."""
        with self._lock:
            ended_interactive, self._held_interactive = self._held_interactive, False
        if ended_interactive and self.signal is not None:
            self.signal.ended()
        while True:
            with self._lock:
                nxt = self._next()
                if nxt is None:
                    self._held = False
                    return
                nxt.granted = True
                self._held_interactive = not nxt.background
            if nxt.wake():
                return
            self._ended(nxt)  # its loop has closed: it will never end its turn

    def _next(self) -> _Waiter | None:
        if self._urgent and (not self._background or self._urgent_in_a_row < URGENT_IN_A_ROW):
            self._urgent_in_a_row = self._urgent_in_a_row + 1 if self._background else 0
            return self._urgent.popleft()
        self._urgent_in_a_row = 0
        return self._background.popleft() if self._background else None

    @contextmanager
    def turn(self, *, background: bool = False) -> Iterator[None]:
        held = self.acquire(background=background)
        try:
            yield
        finally:
            if held:
                self.release()

    @asynccontextmanager
    async def turn_async(self, *, background: bool = False) -> AsyncIterator[None]:
        held = await self.acquire_async(background=background)
        try:
            yield
        finally:
            if held:
                self.release()


_queues: dict[Path, WriteQueue] = {}
_queues_lock = threading.Lock()


def queue_for(path: Path) -> WriteQueue:
    """The process's queue for the database file at `path` (one per file, shared by every
    engine of this process that writes to it)."""
    key = path.resolve()
    with _queues_lock:
        found = _queues.get(key)
        if found is None:
            found = _queues[key] = WriteQueue()
        return found


def on_event_loop_thread() -> bool:
    """Whether this thread runs an event loop now: it must not block waiting for a turn."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
