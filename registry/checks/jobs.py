"""Background jobs of the bank check (APScheduler, see `registry/scheduler.py`)."""

from __future__ import annotations

import logging

from registry.checks.querylog import purge
from registry.checks.services import china_day
from registry.checks.watchlist import follow_log
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("registry.checks")


async def follow_watchlists(services: Services) -> int:
    """Turn every event not yet read into watchlist changes; returns how many events."""
    total = 0
    while True:
        read = await services.db.write(follow_log, utcnow())
        total += read
        if read == 0:
            return total


async def purge_query_log(services: Services) -> int:
    """Delete query-log rows older than the retention period; returns how many."""
    total = 0
    while True:
        now = utcnow()
        deleted = await services.db.write(
            purge, now, services.settings.checks.log_retention_days, china_day(now)
        )
        total += deleted
        if deleted == 0:
            break
    if total:
        logger.info("purged %d query-log rows past retention", total)
    return total
