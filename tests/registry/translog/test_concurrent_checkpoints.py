"""Two schedulers on one database sign checkpoints at the same moment (issue 18 #9): the
second waits for the first (both claim the transparency log's cursor) and finds nothing new
to sign, instead of inserting the same tree size again (UniqueViolation on PostgreSQL).
Meaningful on PostgreSQL (REGISTRY_TEST_DATABASE_URL); on SQLite one writer at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from registry.db import create_sync_engine
from registry.eventlog.readers import follow_sync
from registry.settings import Settings
from registry.timeutil import utcnow
from registry.translog.services import READER, make_checkpoint
from tests.support.harness import CourtHandle, Registry
from tests.support.processes import registry_process
from tests.support.publishing import publish, signer


def test_two_checkpointers_at_once_sign_one_checkpoint(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    publish(registry, court, 3)
    follow_sync(engine, READER)
    key = signer(settings)
    # The service's own writer engine (on SQLite: BEGIN IMMEDIATE, one writer at a time).
    writer = create_sync_engine(settings.database.url)
    first_signed = threading.Event()
    results: dict[str, object] = {}

    def first() -> None:
        with writer.begin() as conn:
            results["first"] = make_checkpoint(conn, key, settings.translog.origin, utcnow())
            first_signed.set()
            # Hold the transaction open: the second checkpointer runs meanwhile.
            time.sleep(1.0)

    def second() -> None:
        first_signed.wait(10)
        try:
            with writer.begin() as conn:
                results["second"] = make_checkpoint(conn, key, settings.translog.origin, utcnow())
        except Exception as exc:  # what the test is about: name it in the failure
            results["second"] = exc

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    writer.dispose()
    assert isinstance(results["first"], int) and results["first"] > 0
    assert results["second"] is None, results["second"]
    with engine.connect() as conn:
        sizes = conn.execute(sa.text("SELECT tree_size FROM translog_checkpoints")).scalars().all()
    assert sizes == [results["first"]]


def _signed(logs: list[Path]) -> int:
    return sum(log.read_text().count("signed log checkpoint") for log in logs if log.exists())


def test_two_workers_on_one_database_log_no_collision(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    """As deployed: two `registry worker` processes, each signing every second, while
    listings keep arriving; neither logs an error and the checkpoints grow one by one."""
    env = {"REGISTRY_LOG_INTERVAL_SECONDS": "1", "REGISTRY_LOG_LEVEL": "INFO"}
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    with (
        registry_process(settings, ["worker"], env, logs[0]),
        registry_process(settings, ["worker"], env, logs[1]),
    ):
        # Until both have signed a few times (start-up takes seconds on a loaded machine).
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _signed(logs) < 6:
            publish(registry, court, 2)
            time.sleep(0.3)
    assert _signed(logs) >= 6, "\n".join(log.read_text()[-2000:] for log in logs)
    text = "\n".join(log.read_text() for log in logs)
    for bad in ("UniqueViolation", "IntegrityError", "Traceback", "ERROR"):
        assert bad not in text, text[-3000:]
    with engine.connect() as conn:
        sizes = (
            conn.execute(sa.text("SELECT tree_size FROM translog_checkpoints ORDER BY tree_size"))
            .scalars()
            .all()
        )
    assert sizes and len(sizes) == len(set(sizes))
