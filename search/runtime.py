"""The search engine one process uses, built by the composition root from the settings.

`search_engine` (the search plugin's resource) opens the engine named by
`REGISTRY_SEARCH_BACKEND` when a process starts and keeps it on `services.extensions`;
handlers and jobs reach it from there. Past this table, nothing depends on which engine it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from registry.eventlog.readers import follow_sync
from registry.runtime import Services
from registry.settings import Settings
from search.embedded import EmbeddedIndex
from search.indexer import index_follower, reconcile_with
from search.interface import SearchEngine
from search.meili import MeiliIndex

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


async def follow_index(services: Services) -> int:
    """Apply the events above the index's cursor; returns how many were read. In a worker
    thread: Meilisearch's client blocks, and building documents is CPU work best kept off
    the event loop."""
    reader = index_follower(engine_of(services))
    return await anyio.to_thread.run_sync(follow_sync, services.db.sync_writer, reader)


async def reconcile_index(services: Services) -> dict[str, int]:
    """Compare the index with the active listings and repair it; returns the counts."""
    return await anyio.to_thread.run_sync(reconcile_with, services.db.sync_writer, engine_of(services))
