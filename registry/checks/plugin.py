"""The bank check: checks, receipts, watchlists, the query log and its retention."""

from __future__ import annotations

from collections.abc import Sequence

from registry.checks.cli import check_command
from registry.checks.controllers import (
    CheckController,
    QueryLogController,
    ReceiptController,
    WatchlistController,
)
from registry.checks.jobs import purge_query_log
from registry.checks.watchlist import READER
from registry.settings import Settings
from registry.wiring import Job, Plugin, follow_job


def _jobs(settings: Settings) -> Sequence[Job]:
    return [
        follow_job("follow_watchlists", READER, every=settings.checks.watchlist_interval_seconds),
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
)
