"""`registry search reindex | reconcile | recent-index`: the operator's commands, on synchronous engines."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select

from registry.db import create_sync_engine
from registry.listings.ingest import worker_count
from registry.listings.models import Listing
from registry.settings import Settings
from search.embedded import EmbeddedIndex
from search.indexer import reconcile_with
from search.runtime import open_engine


def active_listings(settings: Settings) -> int:
    """How many listings a reindex or a reconcile goes through (their progress bar's total)."""
    engine = create_sync_engine(settings.database.url, writer=False)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(Listing.status == "active")).scalar_one())
    finally:
        engine.dispose()


def reindex_now(settings: Settings) -> dict[str, Any]:
    engine = open_engine(settings)
    writer = create_sync_engine(settings.database.url)
    started = time.perf_counter()
    try:
        figures = engine.rebuild(writer, worker_count(settings.listings.ingest_workers))
    finally:
        engine.close()
        writer.dispose()
    return {
        "backend": settings.search.backend,
        "documents": figures.pop("documents"),
        "seconds": round(time.perf_counter() - started, 2),
        **figures,
    }


def reconcile_now(settings: Settings, *, deep: bool = False) -> dict[str, Any]:
    engine = open_engine(settings)
    writer = create_sync_engine(settings.database.url)
    reader = create_sync_engine(settings.database.url, writer=False)
    try:
        counts = reconcile_with(writer, engine, deep=deep, reader=reader)
    finally:
        engine.close()
        writer.dispose()
        reader.dispose()
    return {"backend": settings.search.backend, **counts}


def maintain_recent_now(settings: Settings) -> dict[str, Any]:
    engine = open_engine(settings)
    try:
        return engine.maintain_recent() if isinstance(engine, EmbeddedIndex) else {}
    finally:
        engine.close()
