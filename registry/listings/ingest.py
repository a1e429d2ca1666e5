"""Signed ingest: worker processes prepare *and store* chunks of envelopes.

Preparing a listing (canonical JSON, identifier checks, Ed25519 verification, encryption)
costs ~170 µs of CPU, most of it holding the GIL, and storing it ~100 µs more. Each worker
process does both for its chunk, over its own connection: shipping prepared rows back to
one writer cost more in pickling than the write itself (measured ~140 µs an item).

Chunks are prepared in parallel but written strictly in the order they were submitted
(each carries a ticket; a worker waits for its turn to write). So a batch or an import
file behaves as if its items were stored one after another: a duplicate later in the
batch is the one refused, whichever worker got to it first. While one worker writes, the
others prepare.

Small requests (a single listing, an amendment, a removal) are handled inline.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from registry.clients.services import Principal
from registry.db import Database, create_sync_engine, write_queue
from registry.http.body import decode_signed_json, invalid_json
from registry.identity.crypto import SecretsSource
from registry.identity.identifiers import warm_division_cache
from registry.listings import services
from registry.listings.prepare import PrepareContext, PreparedListing, Preparer
from registry.listings.schemas import IngestResult
from registry.problems import Problem, database_unavailable
from registry.readerpool import kill_workers, shutdown_within
from registry.timeutil import utcnow
from registry.writequeue import InteractiveSignal

# Below this many items a batch is handled inline: a pool round-trip costs more.
INLINE_LIMIT = 64
# Tries of a chunk whose worker or connection failed before its items are reported not stored.
CHUNK_ATTEMPTS = 3
CHUNK_SIZE = 500
TURN_TIMEOUT_SECONDS = 600
# A pool that finishes no chunk for this long while chunks wait is stuck (a stopped or hung
# worker): a chunk takes well under a second, a 10,000-envelope batch under load about 60 s.
STALL_SECONDS = 120.0
# How often a request waiting for its chunks looks whether the pool is stuck.
STALL_CHECK_SECONDS = 1.0
# How often a worker waiting for its turn looks: from 0.1 ms, doubling, up to 1 ms.
TURN_POLL_MIN_SECONDS = 0.0001
TURN_POLL_MAX_SECONDS = 0.001
logger = logging.getLogger("registry.ingest")


class WriteTurns:
    """Tickets shared by the pool's processes: chunk N is written after chunk N-1.

    One shared counter, polled, with no lock: only the turn's holder writes it, so a worker
    killed anywhere leaves the others nothing to wait on but the counter. A
    `multiprocessing.Condition` did: its `notify_all` waits for every sleeper to wake, and a
    worker killed while waiting for its turn hung the next notifier, and with it the batch
    (tests/registry/test_pool_workers.py). A chunk's write takes tens of
    milliseconds; the poll adds at most `TURN_POLL_MAX_SECONDS` to a hand-over."""

    def __init__(self, mp_context: Any) -> None:
        self._next = mp_context.Value("q", 0, lock=False)

    @contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        deadline = time.monotonic() + TURN_TIMEOUT_SECONDS
        pause = TURN_POLL_MIN_SECONDS
        while self._next.value < ticket:
            # A turn that never comes means an earlier chunk was lost: fail, do not hang.
            if time.monotonic() >= deadline:
                raise TimeoutError(f"ingest chunk {ticket} waited too long for its turn to write")
            time.sleep(pause)
            pause = min(pause * 2, TURN_POLL_MAX_SECONDS)
        try:
            yield
        finally:
            # Pass the turn on even if this chunk failed, or every later chunk would wait forever.
            self._next.value = max(self._next.value, ticket + 1)


_worker_engine: Engine | None = None
_worker_reader: Engine | None = None
_worker_context: PrepareContext | None = None
_worker_turns: WriteTurns | None = None
_worker_signal: InteractiveSignal | None = None


def _exit_when_gone(server_pid: int) -> None:
    """A worker outlives a killed server (kill -9: no shutdown runs) under PID 1, holding its
    database connections: it checks every second and exits once the server is gone."""
    while True:
        time.sleep(1)
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # the pid was reused by another user's process
            os._exit(1)


def _init_worker(
    database_url: str,
    context: PrepareContext | None,
    turns: WriteTurns,
    server_pid: int,
    signal: InteractiveSignal | None,
    niceness: int,
) -> None:
    # One engine, the shared turns and (for imports) one context per worker, set once at start.
    global _worker_engine, _worker_reader, _worker_context, _worker_turns, _worker_signal  # noqa: PLW0603
    threading.Thread(target=_exit_when_gone, args=(server_pid,), name="server-watch", daemon=True).start()
    _worker_engine = create_sync_engine(database_url)
    # Reads must not take SQLite's write lock (the writer engine begins IMMEDIATE).
    _worker_reader = create_sync_engine(database_url, writer=False)
    _worker_context = context
    _worker_turns = turns
    _worker_signal = signal
    # A batch is seconds of CPU (its signature checks above all) that no one waits for
    # interactively: a removal, a search or a bank check on the same cores goes first. On
    # PostgreSQL at the same priority, removals sent during batches of 10,000 took p50 2 s,
    # up to 6 s, to leave every surface; at nice 10 p50 0.7 s (docs/benchmarks.md).
    if niceness:
        os.nice(niceness)
    warm_division_cache()
    # What is alive now (modules, the division cache) lives as long as the worker: out of the
    # collector's sight, full collections no longer walk it every few chunks (measured under
    # load: 10-60 µs a listing less, in decoding and storing; docs/benchmarks.md).
    gc.freeze()


def _decode(raw: bytes) -> Any:
    """The envelope, or the Problem that refuses it: one bad item does not stop a batch."""
    try:
        return decode_signed_json(raw)
    except Problem as problem:
        return problem
    except (RecursionError, ValueError):  # a parser's own limit: that item is not JSON to us
        return invalid_json()


_NOT_STORED = IngestResult(
    status=503,
    outcome="rejected",
    problem=Problem(
        503, "not_stored", "this envelope was not stored (the service failed meanwhile): send it again"
    ).to_dict(),
)
_UNPROCESSABLE = Problem(422, "unprocessable_envelope", "this envelope could not be processed")


def prepare_envelopes(preparer: Preparer, envelopes: Sequence[Any]) -> list[PreparedListing | Problem]:
    """Prepare each decoded envelope; a bad one (or one that did not decode) becomes its Problem.
    So does one that makes preparation fail unexpectedly: one item never fails its batch."""
    out: list[PreparedListing | Problem] = []
    for envelope in envelopes:
        if isinstance(envelope, Problem):
            out.append(envelope)
            continue
        try:
            out.append(preparer.listing(envelope))
        except Problem as problem:
            out.append(problem)
        except Exception as exc:
            _log_unexpected("preparing", exc)
            out.append(_UNPROCESSABLE)
    return out


def _log_unexpected(step: str, exc: Exception) -> None:
    # Type and frames only: the message of an arbitrary exception may quote personal data.
    logger.error(
        "unexpected %s while %s an envelope\n%s",
        type(exc).__name__,
        step,
        "".join(traceback.format_tb(exc.__traceback__)),
    )


def store_prepared(
    conn: Connection,
    prepared: Sequence[PreparedListing | Problem],
    *,
    actor: str,
    client_court: str | None,
) -> list[IngestResult]:
    """Publish prepared items in one statement set; if that fails for a reason other than the
    database itself, again item by item, each in its own savepoint, so that the item at fault
    is its own refusal and the others are stored. Either way, in the caller's transaction."""
    now = utcnow()
    try:
        with conn.begin_nested():
            return services.publish_listings(conn, prepared, actor=actor, now=now, client_court=client_court)
    except Exception as exc:
        if database_unavailable(exc):
            raise
        _log_unexpected("storing a chunk with", exc)
    results: list[IngestResult] = []
    for item in prepared:
        try:
            with conn.begin_nested():
                results += services.publish_listings(
                    conn, [item], actor=actor, now=now, client_court=client_court
                )
        except Exception as exc:
            if database_unavailable(exc):
                raise
            _log_unexpected("storing", exc)
            results.append(services.rejected(_UNPROCESSABLE))
    return results


def store_envelopes(
    ticket: int,
    context: PrepareContext | None,
    raws: Sequence[bytes],
    actor: str,
    client_court: str | None,
) -> list[IngestResult]:
    """Worker side: parse and prepare a chunk, then, on its turn, publish it in one transaction.

    Envelopes travel as raw JSON bytes: cheaper to send between processes than parsed objects.
    """
    if _worker_engine is None or _worker_reader is None or _worker_turns is None:
        raise RuntimeError("ingest worker started without a database")
    engine, reader = _worker_engine, _worker_reader
    try:
        ctx = context or _worker_context
        if ctx is None:
            raise RuntimeError("ingest worker has no prepare context")
        envelopes = [_decode(raw) for raw in raws]
        with reader.connect() as lookup:
            # The chunk's keys in one query (the batch endpoint sends none). Decoding has
            # refused every envelope holding a control character, so no key id here holds
            # U+0000 (which PostgreSQL refuses); a key not found is asked for again when its
            # envelope is prepared, as before.
            missing = referenced_key_ids(envelopes) - ctx.keys.keys()
            if missing:
                ctx.keys.update(services.find_keys(lookup, missing))
            preparer = Preparer(ctx, find_key=lambda key_id: services.find_key(lookup, key_id))
            prepared = prepare_envelopes(preparer, envelopes)
    except BaseException:
        with _worker_turns.turn(ticket):
            raise
    # Turns also keep SQLite's busy handler out of the way: it sleeps up to 100 ms per
    # retry, and left the cores idle half the time when workers contended (measured).
    with _worker_turns.turn(ticket):
        if _worker_signal is not None:
            # The server's removals, amendments and check logs first (registry.writequeue).
            _worker_signal.let_earlier_pass()
        with engine.begin() as conn:
            return store_prepared(conn, prepared, actor=actor, client_court=client_court)


def worker_count(configured: int) -> int:
    return configured or max(1, os.cpu_count() or 1)


def new_pool(
    workers: int, database_url: str, context: PrepareContext | None = None, *, niceness: int = 0
) -> ProcessPoolExecutor:
    # forkserver: forking a process that runs an event loop and driver threads is unsafe.
    mp_context = multiprocessing.get_context("forkserver")
    queue = write_queue(database_url)
    signal = None
    if queue is not None:
        if queue.signal is None:
            # One per process and database: a pool started again after a worker died keeps it.
            queue.signal = InteractiveSignal(mp_context)
        signal = queue.signal
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=mp_context,
        initializer=_init_worker,
        initargs=(database_url, context, WriteTurns(mp_context), os.getpid(), signal, niceness),
    )


class IngestStalled(Exception):
    """`registry import`: the workers finished no chunk for the stall time (stopped or hung)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the ingest workers finished no chunk for {seconds:.0f} s and were stopped; what was"
            " stored is kept: run the import again (stored envelopes come back unchanged)"
        )


def referenced_key_ids(envelopes: Sequence[Any]) -> set[str]:
    ids: set[str] = set()
    for envelope in envelopes:
        signature = envelope.get("signature") if isinstance(envelope, dict) else None
        if isinstance(signature, dict) and isinstance(signature.get("key_id"), str):
            ids.add(signature["key_id"])
    return ids


class IngestService:
    """What the HTTP layer calls. Owns the worker pool, started on the first large batch."""

    def __init__(
        self,
        db: Database,
        secrets: SecretsSource,
        workers: int,
        *,
        niceness: int = 0,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.workers = workers
        self.niceness = niceness
        self.stall_seconds = stall_seconds
        self._pool: ProcessPoolExecutor | None = None
        self._tickets = itertools.count()
        # Chunks sent to the pool and not finished, and when one last finished (or, for an
        # idle pool, was sent): a pool that finishes nothing for `stall_seconds` is stuck.
        self._outstanding = 0
        self._progress_at = time.monotonic()

    def close(self) -> None:
        if self._pool is not None:
            # Accepted chunks are finished, not cancelled: later turns depend on them.
            shutdown_within(self._pool, self.stall_seconds)
            self._pool = None

    async def context(self, key_ids: set[str] | None = None) -> PrepareContext:
        return await self.db.read(services.load_context, self.secrets.current(), utcnow(), key_ids)

    async def publish(
        self, raws: Sequence[bytes], principal: Principal, *, actor: str | None = None
    ) -> list[IngestResult]:
        """Publish raw JSON envelopes; one result per envelope, in order."""
        actor = actor or principal.actor
        court = principal.bound_court
        if len(raws) <= INLINE_LIMIT or self.workers <= 1:
            envelopes = [_decode(raw) for raw in raws]
            context = await self.context(referenced_key_ids(envelopes))
            prepared = prepare_envelopes(Preparer(context), envelopes)
            return await self.db.write(store_prepared, prepared, actor=actor, client_court=court)
        # Workers look up the keys themselves: the context carries courts and data keys only.
        context = await self.context(set())
        chunks: list[Sequence[bytes]] = [raws[i : i + CHUNK_SIZE] for i in range(0, len(raws), CHUNK_SIZE)]
        stored: list[list[IngestResult] | None] = [None] * len(chunks)
        for _attempt in range(CHUNK_ATTEMPTS):
            pending = [n for n, done in enumerate(stored) if done is None]
            if not pending:
                break
            outcomes = await self._store_chunks(context, [chunks[n] for n in pending], actor, court)
            for n, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    # The machinery failed (a worker lost, a connection cut): the chunk is
                    # tried again. Whatever of it did commit comes back `unchanged`, by its
                    # submission id, so a retry never stores an item twice.
                    logger.warning("ingest chunk failed (%s); retrying", type(outcome).__name__)
                else:
                    stored[n] = outcome
        return [
            result
            for chunk, outcome in zip(chunks, stored, strict=True)
            for result in (outcome if outcome is not None else [_NOT_STORED] * len(chunk))
        ]

    async def _store_chunks(
        self, context: PrepareContext, chunks: Sequence[Sequence[bytes]], actor: str, court: str | None
    ) -> list[list[IngestResult] | BaseException]:
        if self._pool is None:
            self._pool = new_pool(self.workers, self.db.url, niceness=self.niceness)
            self._tickets = itertools.count()
        pool = self._pool
        loop = asyncio.get_running_loop()
        # Tickets are taken in submission order, which is the order the pool starts tasks.
        try:
            futures = [
                loop.run_in_executor(pool, store_envelopes, next(self._tickets), context, chunk, actor, court)
                for chunk in chunks
            ]
        except BrokenProcessPool as exc:
            # A worker died while the pool was idle: the executor says so only at the next
            # submit. Nothing of these chunks ran; the next attempt takes a fresh pool.
            self._discard(pool)
            return [exc] * len(chunks)
        if self._outstanding == 0:
            self._progress_at = time.monotonic()
        self._outstanding += len(futures)
        for future in futures:
            future.add_done_callback(self._finished)
        # Never cancelled: a cancelled request must not cancel a queued chunk, whose turn
        # later chunks (of any request) wait for (`asyncio.wait` leaves what it waits for be).
        gathered = asyncio.gather(*futures, return_exceptions=True)
        while not gathered.done():
            await asyncio.wait([gathered], timeout=min(STALL_CHECK_SECONDS, self.stall_seconds))
            if not gathered.done() and self._pool is pool and self._stalled():
                # A worker stopped or hung (not dead: the executor sees only deaths). Killed,
                # the pool breaks, and its chunks are tried again on a fresh one below.
                logger.error(
                    "ingest workers finished no chunk for %.0f s: killing and replacing them",
                    time.monotonic() - self._progress_at,
                )
                self._progress_at = time.monotonic()
                kill_workers(pool)
        outcomes = gathered.result()
        if any(isinstance(outcome, BrokenProcessPool) for outcome in outcomes):
            # A worker died (killed, out of memory): the next attempt starts a fresh pool.
            self._discard(pool)
        return list(outcomes)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    def _finished(self, _future: asyncio.Future[Any]) -> None:
        self._outstanding -= 1
        self._progress_at = time.monotonic()

    def _stalled(self) -> bool:
        return self._outstanding > 0 and time.monotonic() - self._progress_at > self.stall_seconds

    async def amend(self, listing_id: str, raw: bytes, principal: Principal) -> IngestResult:
        envelope = decode_signed_json(raw)
        context = await self.context(referenced_key_ids([envelope]))
        prepared = Preparer(context).listing(envelope)
        return await self.db.write(
            services.amend_listing,
            listing_id,
            prepared,
            actor=principal.actor,
            now=utcnow(),
            client_court=principal.bound_court,
        )

    async def remove(self, listing_id: str, raw: bytes, principal: Principal) -> IngestResult:
        envelope = decode_signed_json(raw)
        context = await self.context(referenced_key_ids([envelope]))
        return await self.db.write(
            services.remove_listing,
            listing_id,
            Preparer(context).removal(envelope),
            actor=principal.actor,
            now=utcnow(),
            client_court=principal.bound_court,
        )
