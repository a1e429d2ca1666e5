"""The search engine one process uses, built by the composition root from the settings.

`search_engine` (the search plugin's resource) opens the engine named by
`REGISTRY_SEARCH_BACKEND` when a process starts and keeps it on `services.extensions`;
handlers and jobs reach it from there. Past this table, nothing depends on which engine it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import anyio

from registry.eventlog.readers import follow
from registry.runtime import Services
from registry.settings import Settings
from search.embedded import EmbeddedIndex
from search.indexer import index_follower, reconcile_with
from search.interface import SearchEngine, SearchUnavailable
from search.meili import RESTORE_JOB, MeiliIndex

logger = logging.getLogger("search.runtime")
T = TypeVar("T")
# Waits between attempts while the engine is down: 1 s doubling up to a minute.
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0
# The scheduler job that follows the log into the engine (`search.plugin`).
FOLLOW_JOB = "search_follow_log"

ENGINES: dict[str, Callable[[Settings], SearchEngine]] = {
    "embedded": EmbeddedIndex.from_settings,
    "meilisearch": MeiliIndex.from_settings,
}
EXTENSION = "search"


def open_engine(settings: Settings) -> SearchEngine:
    return ENGINES[settings.search.backend](settings)


@asynccontextmanager
async def search_engine(services: Services) -> AsyncIterator[None]:
    """The process's search engine, from start to stop (a plugin resource)."""
    engine = open_engine(services.settings)
    services.extensions[EXTENSION] = engine
    try:
        yield
    finally:
        services.extensions.pop(EXTENSION, None)
        engine.close()


def engine_of(services: Services) -> SearchEngine:
    engine: SearchEngine = services.extensions[EXTENSION]
    return engine


@dataclass
class Backoff:
    """A job's attempts while its engine is down: one log line when it goes down, one when it
    is back, and waits doubling up to MAX_RETRY_SECONDS between attempts in between (not a
    traceback every half second)."""

    job: str
    failures: int = 0
    retry_at: float = 0.0

    async def run(self, work: Callable[[], Awaitable[T]]) -> T | None:
        """`work`, unless the engine is down and its next attempt is not due (None then)."""
        if time.monotonic() < self.retry_at:
            return None
        try:
            result = await work()
        except SearchUnavailable as exc:
            if self.failures == 0:
                logger.warning("%s: search engine down (%s); retrying with back-off", self.job, exc.reason)
            self.failures += 1
            wait = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** min(self.failures - 1, 10))
            self.retry_at = time.monotonic() + wait
            return None
        if self.failures:
            logger.warning("%s: search engine back after %d failed attempts", self.job, self.failures)
        self.failures = 0
        self.retry_at = 0.0
        return result


def backoff_of(services: Services, job: str) -> Backoff:
    found = services.extensions.setdefault(f"{EXTENSION}.backoff.{job}", Backoff(job))
    assert isinstance(found, Backoff)
    return found


async def follow_index(services: Services) -> int:
    """Apply the events above the index's cursor; returns how many were read (0 while the
    engine is down). In a worker thread: Meilisearch's client blocks, and building documents
    is CPU work best kept off the event loop."""
    reader = index_follower(engine_of(services))

    async def work() -> int:
        return await follow(services.db, reader)

    return await backoff_of(services, FOLLOW_JOB).run(work) or 0


async def reconcile_index(services: Services) -> dict[str, int]:
    """Compare the index with the active listings and repair it; returns the counts ({} while
    the engine is down)."""

    async def work() -> dict[str, int]:
        return await anyio.to_thread.run_sync(
            partial(
                reconcile_with, services.db.sync_writer, engine_of(services), reader=services.db.sync_reader
            )
        )

    return await backoff_of(services, "search_reconcile").run(work) or {}


async def restore_index(services: Services) -> dict[str, int]:
    """Meilisearch: rebuild the live index if it was lost or replaced behind the registry's
    back (`MeiliIndex.restore`); {} when it is the registry's, while the server is down, and
    for another engine. A singleton job: its election is held for the whole rebuild, so one
    process rebuilds at a time."""
    engine = engine_of(services)
    if not isinstance(engine, MeiliIndex):
        return {}

    async def work() -> dict[str, int]:
        return await anyio.to_thread.run_sync(engine.restore, services.db.sync_writer)

    return await backoff_of(services, RESTORE_JOB).run(work) or {}


async def maintain_recent_index(services: Services) -> dict[str, object]:
    """Build or move the newest documents' own indexes when due (embedded engine on
    PostgreSQL, search.recent); {} for another engine."""
    engine = engine_of(services)
    if not isinstance(engine, EmbeddedIndex):
        return {}
    return await anyio.to_thread.run_sync(engine.maintain_recent)


async def engine_answers(services: Services) -> None:
    """Readiness: the engine in use can answer searches; raises `SearchUnavailable` (with
    the reason, for the log) when it cannot."""
    reason = await engine_of(services).ready()
    if reason is not None:
        raise SearchUnavailable(reason)
