"""`registry search reindex | reconcile`: the operator's commands, on a synchronous engine."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from registry.db import create_sync_engine
from registry.listings.ingest import worker_count
from registry.settings import Settings
from search.indexer import reconcile, reindex, staged_reindex
from search.meili import MeiliIndex, meili_reconcile, meili_reindex


def reindex_now(settings: Settings) -> dict[str, Any]:
    engine = create_sync_engine(settings.database.url, writer=not settings.database.is_sqlite)
    workers = worker_count(settings.listings.ingest_workers)
    started = time.perf_counter()
    extra: dict[str, Any] = {}
    try:
        if settings.search.backend == "meilisearch":
            count = meili_reindex(engine, MeiliIndex.from_settings(settings))
        elif settings.database.is_sqlite:
            count, held = staged_reindex(engine, workers)
            extra["write_lock_seconds"] = round(held, 2)
        else:
            with engine.begin() as conn:
                count = reindex(conn, workers)
            if engine.dialect.name == "postgresql":
                # Every old row is now dead: reclaim it (VACUUM cannot run inside the rebuild's
                # transaction), or queries recheck twice the rows until autovacuum comes.
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM (ANALYZE) search_docs"))
    finally:
        engine.dispose()
    return {
        "backend": settings.search.backend,
        "documents": count,
        "seconds": round(time.perf_counter() - started, 2),
        **extra,
    }


def reconcile_now(settings: Settings, *, deep: bool = False) -> dict[str, Any]:
    engine = create_sync_engine(settings.database.url)
    try:
        if settings.search.backend == "meilisearch":
            counts = meili_reconcile(engine, MeiliIndex.from_settings(settings))
        else:
            with engine.begin() as conn:
                counts = reconcile(conn, deep=deep).as_dict()
    finally:
        engine.dispose()
    return {"backend": settings.search.backend, **counts}
