"""A single write (a removal) is not starved by an ingest batch's back-to-back chunks on SQLite.

Chunks commit one after another and the next re-takes SQLite's write lock microseconds later;
SQLite's busy handler polls in sleeps of up to 100 ms, so a removal waiting for the lock used
to miss every gap and wait for the whole batch (issue 18 #11). The writers' turnstile
(`registry/db.py`) makes the next chunk give way to a writer that is already waiting, the
server's async writers (whose waiting mark must never block the event loop) as well.
"""

from __future__ import annotations

import asyncio
import stat
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.db import create_engine, create_sync_engine, turnstile_path

CHUNKS = 30
CHUNK_SECONDS = 0.05


def _chunk_stream(engine: sa.Engine, first_committed: threading.Event) -> None:
    """Like the ingest workers: each chunk its own transaction, the next begun at once."""
    for _ in range(CHUNKS):
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO log (who) VALUES ('chunk')")
            time.sleep(CHUNK_SECONDS)
        first_committed.set()


def test_a_waiting_single_writer_goes_before_the_next_chunks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    chunks, single, reader = (
        create_sync_engine(url, batch=True),
        create_sync_engine(url, priority=True),
        create_sync_engine(url, writer=False),
    )
    try:
        with chunks.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE log (n INTEGER PRIMARY KEY, who TEXT NOT NULL)")
        first_committed = threading.Event()
        stream = threading.Thread(target=_chunk_stream, args=(chunks, first_committed))
        stream.start()
        try:
            assert first_committed.wait(30)
            time.sleep(CHUNK_SECONDS / 2)  # ask in the middle of a chunk, not at its commit
            with reader.connect() as conn:
                before = conn.exec_driver_sql("SELECT count(*) FROM log").scalar_one()
            waited = time.monotonic()
            with single.begin() as conn:
                waited = time.monotonic() - waited
                conn.exec_driver_sql("INSERT INTO log (who) VALUES ('single')")
        finally:
            stream.join()
        with reader.connect() as conn:
            order = [who for (who,) in conn.exec_driver_sql("SELECT who FROM log ORDER BY n")]
    finally:
        for engine in (chunks, single, reader):
            engine.dispose()
    assert order.count("chunk") == CHUNKS
    ahead = order.index("single") - before
    # The chunk in progress when it asked, at most one already at the turnstile (and one for a
    # slow scheduler between the count and the ask);
    # without the turnstile the single write waited for (nearly) the whole stream.
    assert ahead <= 3, f"{ahead} chunks went ahead of the waiting single write ({waited:.2f} s)"
    assert CHUNKS - before - ahead >= 10, "the stream ended too soon to tell"


def test_the_servers_async_writers_go_before_the_next_chunks_and_never_block_the_loop(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    chunks, reader = create_sync_engine(url, batch=True), create_sync_engine(url, writer=False)
    with chunks.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE log (n INTEGER PRIMARY KEY, who TEXT NOT NULL)")
    first_committed = threading.Event()
    stream = threading.Thread(target=_chunk_stream, args=(chunks, first_committed))

    async def singles() -> tuple[int, float]:
        writer = create_engine(url, writer=True)
        ticks = 0

        async def ticker() -> None:  # the event loop keeps turning while writers wait
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        async def write(n: int) -> None:
            async with writer.begin() as conn:
                await conn.exec_driver_sql(f"INSERT INTO log (who) VALUES ('single {n}')")

        clock = asyncio.create_task(ticker())
        try:
            started = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(5))), 20)
            return ticks, time.monotonic() - started
        finally:
            clock.cancel()
            await writer.dispose()

    stream.start()
    try:
        assert first_committed.wait(30)
        time.sleep(CHUNK_SECONDS / 2)
        with reader.connect() as conn:
            before = conn.exec_driver_sql("SELECT count(*) FROM log").scalar_one()
        ticks, waited = asyncio.run(singles())
    finally:
        stream.join()
    with reader.connect() as conn:
        order = [who for (who,) in conn.exec_driver_sql("SELECT who FROM log ORDER BY n")]
    chunks.dispose()
    reader.dispose()
    last_single = max(n for n, who in enumerate(order) if who.startswith("single"))
    ahead = order[:last_single].count("chunk") - before
    assert ahead <= 4, f"{ahead} chunks went ahead of five waiting async writes ({waited:.2f} s)"
    assert ticks >= 1, "the event loop stood still while its writers waited"


def test_the_turnstile_file_is_private_and_only_for_database_files(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    engine = create_sync_engine(f"sqlite:///{path}", priority=True)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x)")
    finally:
        engine.dispose()
    lock = turnstile_path(str(path))
    assert lock is not None and lock.exists()
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    assert turnstile_path(":memory:") is None and turnstile_path(None) is None


@pytest.mark.parametrize(("writer", "priority"), [(True, True), (True, False), (False, True)])
def test_only_priority_and_batch_writers_touch_the_turnstile(
    tmp_path: Path, writer: bool, priority: bool
) -> None:
    """Readers, and the service's followers (plain sync writers), neither wait there nor
    make batches wait for them: that cost ingest a third of its speed (measured)."""
    path = tmp_path / "registry.db"
    engine = create_sync_engine(f"sqlite:///{path}", writer=writer, priority=priority)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()
    assert Path(f"{path}-writers").exists() is (writer and priority)
