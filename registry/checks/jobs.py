"""Background jobs of the bank check (APScheduler, see `registry/scheduler.py`)."""

from __future__ import annotations

import logging

from registry.calendar import china_date
from registry.checks.querylog import purge
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("registry.checks")


async def purge_query_log(services: Services) -> int:
    """Delete query-log rows older than the retention period; returns how many."""
    total = 0
    while True:
        now = utcnow()
        deleted = await services.db.write(
            purge, now, services.settings.checks.log_retention_days, china_date(now)
        )
        total += deleted
        if deleted == 0:
            break
    if total:
        logger.info("purged %d query-log rows past retention", total)
    return total
