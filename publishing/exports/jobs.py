"""The daily export job and the function the CLI shares with it."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from typing import Any

from publishing.exports.writer import exported_after, prune, run_export, withdraw_stale
from registry.calendar import china_date, end_of_china_day, today_in_china
from registry.db import create_sync_engine
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("publishing.exports")


def export_now(services: Services, day: date) -> dict[str, Any]:
    """Write the export of `day`, then prune old ones. Blocking: run it in a thread."""
    settings = services.settings
    engine = create_sync_engine(settings.database.url, writer=False)
    try:
        now = utcnow()
        manifest = run_export(
            engine,
            services.signer,
            settings.exports.dir,
            day,
            now,
            parallel_changes=settings.exports.parallel_changes,
        )
        withdrawn = withdraw_stale(engine, settings.exports.dir, now)
    finally:
        engine.dispose()
    removed = prune(settings.exports.dir, settings.exports.retention_days, china_date(now))
    logger.info(
        "export %s: %d listings; withdrew %d exports holding listings changed since; pruned %d old exports",
        day,
        manifest["listings"],
        len(withdrawn),
        len(removed),
    )
    return manifest


def withdraw_now(services: Services) -> list[date]:
    """Withdraw what exports hold that the registry no longer publishes. Blocking."""
    engine = create_sync_engine(services.settings.database.url, writer=False)
    try:
        return withdraw_stale(engine, services.settings.exports.dir, utcnow())
    finally:
        engine.dispose()


async def daily_export(services: Services) -> dict[str, Any]:
    """Yesterday's (China time) export: the full list now and the changes of that day. Once:
    a worker whose run comes after another's wrote it (a late clock, a restart within the
    misfire grace) finds the day's signed export in the shared directory and leaves it. An
    export of that day written before the day ended (`registry export run` during it) lacks
    the rest of the day's changes: it is written again, whole."""
    yesterday = today_in_china() - timedelta(days=1)
    if exported_after(services.settings.exports.dir, yesterday, end_of_china_day(yesterday)):
        # Withdrawals still run every day (at most a day, publishing.md), exported or not.
        await asyncio.to_thread(withdraw_now, services)
        return {"skipped": yesterday.isoformat()}
    return await asyncio.to_thread(export_now, services, yesterday)
