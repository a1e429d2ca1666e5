"""The bank check: checks, receipts, watchlists, the query log and its retention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from registry.checks.cli import check_command
from registry.checks.controllers import (
    CheckController,
    QueryLogController,
    ReceiptController,
    WatchlistController,
)
from registry.checks.front import check_front
from registry.checks.jobs import purge_query_log
from registry.checks.watchlist import JOB as WATCHLIST_JOB
from registry.checks.watchlist import reader_for
from registry.eventlog.readers import follow
from registry.settings import Settings
from registry.wiring import Job, Plugin

if TYPE_CHECKING:
    from registry.runtime import Services


async def _follow_watchlists(services: Services) -> int:
    # As `follow_job`, with the keys of the moment: during a blind-index key rotation the
    # reader matches listings and watched subjects under either key.
    return await follow(services.db, reader_for(services.secrets))


def _jobs(settings: Settings) -> Sequence[Job]:
    return [
        # Woken by the log as the other readers are: a bank's push of a removal waited up to
        # the interval (9-11 s where every other surface took under one).
        Job(
            WATCHLIST_JOB,
            _follow_watchlists,
            every=settings.checks.watchlist_interval_seconds,
            wake_on_log=True,
        ),
        Job(
            "purge_query_log",
            purge_query_log,
            every=settings.checks.log_purge_interval_seconds,
            first_after=30,
            singleton=True,
        ),
    ]


plugin = Plugin(
    name="checks",
    routes=[CheckController, WatchlistController, QueryLogController],
    # Anyone may verify a receipt: under the public rate budget.
    public_routes=[ReceiptController],
    jobs=_jobs,
    cli=[check_command],
    front=check_front,
)
