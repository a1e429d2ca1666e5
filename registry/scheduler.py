"""Background jobs (APScheduler 3): inside `registry serve` by default, or in `registry worker`."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from publishing.exports.jobs import daily_export
from publishing.feeds.jobs import follow_publications
from publishing.sync.delivery import deliver_due
from publishing.sync.notices import issue_notices
from publishing.sync.watchpush import push_watch_changes
from registry.checks.jobs import follow_watchlists, purge_query_log
from registry.listings.prepare import CHINA_TIME
from registry.listings.services import expire_due
from registry.runtime import Services
from registry.timeutil import utcnow
from registry.translog.jobs import advance_log

logger = logging.getLogger("registry.scheduler")


async def expire_fixed_terms(services: Services) -> int:
    """Remove every listing whose fixed term has ended; returns how many."""
    total = 0
    while True:
        now = utcnow()
        async with services.db.writer.begin() as conn:
            expired = await conn.run_sync(expire_due, today=now.astimezone(CHINA_TIME).date(), now=now)
        total += expired
        if expired == 0:
            break
    if total:
        logger.info("expired %d fixed-term listings", total)
    return total


def build_scheduler(services: Services) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        expire_fixed_terms,
        "interval",
        seconds=services.settings.expiry_interval_seconds,
        args=[services],
        id="expire_fixed_terms",
        coalesce=True,
        max_instances=1,
        next_run_time=utcnow() + timedelta(seconds=5),
    )
    # Agency push delivery. Passes may overlap (a long backlog keeps one busy while the next
    # serves other subscriptions); leases keep passes and processes apart.
    scheduler.add_job(
        deliver_due,
        "interval",
        seconds=services.settings.sync_interval_seconds,
        args=[services],
        id="sync_push_delivery",
        coalesce=True,
        max_instances=4,
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        issue_notices,
        "interval",
        seconds=services.settings.sync_interval_seconds,
        args=[services],
        id="assistance_notices",
        coalesce=True,
        max_instances=1,
        next_run_time=utcnow(),
    )
    scheduler.add_job(
        push_watch_changes,
        "interval",
        seconds=services.settings.sync_interval_seconds,
        args=[services],
        id="watchlist_push",
        coalesce=True,
        max_instances=1,
    )
    # Bank checks: watchlist changes from the event log; query-log retention.
    scheduler.add_job(
        follow_watchlists,
        "interval",
        seconds=services.settings.watchlist_interval_seconds,
        args=[services],
        id="follow_watchlists",
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        purge_query_log,
        "interval",
        seconds=services.settings.check_log_purge_interval_seconds,
        args=[services],
        id="purge_query_log",
        coalesce=True,
        max_instances=1,
        next_run_time=utcnow() + timedelta(seconds=30),
    )
    _add_publishing_jobs(scheduler, services)
    return scheduler


def _add_publishing_jobs(scheduler: AsyncIOScheduler, services: Services) -> None:
    """The feeds' reader, the transparency log and the daily export."""
    settings = services.settings
    common: dict[str, Any] = {"args": [services], "coalesce": True, "max_instances": 1}
    scheduler.add_job(
        follow_publications,
        "interval",
        seconds=settings.publications_interval_seconds,
        id="publications",
        **common,
    )
    # First run soon after start, so a fresh service has a checkpoint to show within seconds.
    scheduler.add_job(
        advance_log,
        "interval",
        seconds=settings.log_interval_seconds,
        id="translog",
        next_run_time=utcnow() + timedelta(seconds=5),
        **common,
    )
    scheduler.add_job(
        daily_export,
        "cron",
        hour=settings.export_hour,
        minute=0,
        timezone=CHINA_TIME,
        id="daily_export",
        misfire_grace_time=6 * 3600,  # a busy or restarted worker still writes the day's export
        **common,
    )
