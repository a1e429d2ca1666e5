"""The search engine one process uses, built by the composition root from the settings.

`create_search(services)` picks the engine (`REGISTRY_SEARCH_BACKEND`); the app factory keeps
it in `app.state.search`, and handlers reach it with `search_index_of(app)`.
`add_search_jobs` puts the log follower and the reconcile job on the process's scheduler.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from litestar import Litestar
from sqlalchemy import Engine
from sqlalchemy import create_engine as sa_create_engine

from registry.db import create_sync_engine, sync_url
from registry.runtime import Services
from registry.timeutil import utcnow
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
    engine = reader_engine(settings.database_url)
    if settings.search_backend == "meilisearch":
        meili = MeiliIndex.from_settings(settings)
        return SearchRuntime(meili, meili, engine, settings.database_url)
    return SearchRuntime(EmbeddedIndex(engine), None, engine, settings.database_url)


def search_index_of(app: Litestar | Any) -> SearchIndex:
    runtime: SearchRuntime = app.state.search
    return runtime.index


async def follow_job(services: Services, runtime: SearchRuntime) -> int:
    """Apply the events above the index's cursor; returns how many were read."""
    if runtime.meili is not None:
        return await anyio.to_thread.run_sync(meili_follow_log, runtime.writer(), runtime.meili)
    return await follow_log(services.db)


async def reconcile_job(services: Services, runtime: SearchRuntime) -> dict[str, int]:
    """Compare the index with the active listings and repair it; returns the counts."""
    if runtime.meili is not None:
        return await anyio.to_thread.run_sync(meili_reconcile, runtime.writer(), runtime.meili)
    async with services.db.writer.begin() as conn:
        return (await conn.run_sync(reconcile)).as_dict()


def add_search_jobs(scheduler: AsyncIOScheduler, services: Services, runtime: SearchRuntime) -> None:
    settings = services.settings
    # APScheduler logs two INFO lines per run: four a second for the log follower.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    scheduler.add_job(
        follow_job,
        "interval",
        seconds=settings.search_index_interval_seconds,
        args=[services, runtime],
        id="search_follow_log",
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        reconcile_job,
        "interval",
        seconds=settings.search_reconcile_interval_seconds,
        args=[services, runtime],
        id="search_reconcile",
        coalesce=True,
        max_instances=1,
        next_run_time=utcnow() + timedelta(seconds=60),
    )
