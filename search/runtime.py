"""The search engine one process uses, built by the composition root from the settings.

`search_engine` (the search plugin's resource) picks the engine (`REGISTRY_SEARCH_BACKEND`) when
a process starts and keeps it on `services.extensions`; handlers and jobs reach it from there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from sqlalchemy import Engine
from sqlalchemy import create_engine as sa_create_engine

from registry.db import create_sync_engine, sync_url
from registry.runtime import Services
from search.embedded import EmbeddedIndex
from search.indexer import follow_log, reconcile
from search.interface import SearchIndex
from search.meili import MeiliIndex, meili_follow_log, meili_reconcile


def reader_engine(database_url: str) -> Engine:
    """Synchronous reads for the hot path (see search.embedded)."""
    if database_url.startswith("sqlite"):
        return create_sync_engine(database_url, writer=False)
    # Custom plans: a generic plan for a short-pattern search is several times slower
    # (shared/DESIGN.md); psycopg would otherwise prepare after five runs.
    return sa_create_engine(
        sync_url(database_url),
        pool_size=8,
        max_overflow=4,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"options": "-c plan_cache_mode=force_custom_plan", "prepare_threshold": None},
    )


@dataclass
class SearchRuntime:
    index: SearchIndex
    meili: MeiliIndex | None
    engine: Engine
    database_url: str
    _writer: Engine | None = None

    def writer(self) -> Engine:
        """A synchronous writer engine, made on first use (only Meilisearch's jobs need one)."""
        if self._writer is None:
            self._writer = create_sync_engine(self.database_url)
        return self._writer

    def close(self) -> None:
        self.engine.dispose()
        if self._writer is not None:
            self._writer.dispose()


def create_search(services: Services) -> SearchRuntime:
    settings = services.settings
    engine = reader_engine(settings.database.url)
    if settings.search.backend == "meilisearch":
        meili = MeiliIndex.from_settings(settings)
        return SearchRuntime(meili, meili, engine, settings.database.url)
    return SearchRuntime(EmbeddedIndex(engine), None, engine, settings.database.url)


EXTENSION = "search"


@asynccontextmanager
async def search_engine(services: Services) -> AsyncIterator[None]:
    """The process's search engine, from start to stop (a plugin resource)."""
    runtime = create_search(services)
    services.extensions[EXTENSION] = runtime
    try:
        yield
    finally:
        services.extensions.pop(EXTENSION, None)
        runtime.close()


def search_runtime(services: Services) -> SearchRuntime:
    runtime: SearchRuntime = services.extensions[EXTENSION]
    return runtime


async def follow_job(services: Services) -> int:
    """Apply the events above the index's cursor; returns how many were read."""
    runtime = search_runtime(services)
    if runtime.meili is not None:
        return await anyio.to_thread.run_sync(meili_follow_log, runtime.writer(), runtime.meili)
    return await follow_log(services.db)


async def reconcile_job(services: Services) -> dict[str, int]:
    """Compare the index with the active listings and repair it; returns the counts."""
    runtime = search_runtime(services)
    if runtime.meili is not None:
        return await anyio.to_thread.run_sync(meili_reconcile, runtime.writer(), runtime.meili)
    async with services.db.writer.begin() as conn:
        return (await conn.run_sync(reconcile)).as_dict()
