"""Agency linkage: subscriptions, push delivery, assistance notices, bank watchlist pushes."""

from __future__ import annotations

from collections.abc import Sequence

from publishing.sync.cli import sync_cli
from publishing.sync.controllers import (
    AgencyFeedController,
    NoticeController,
    SubscriptionAdminController,
    SyncStatusController,
)
from publishing.sync.delivery import dispatch_due
from publishing.sync.notices import JOB as NOTICES_JOB
from publishing.sync.notices import notice_reader
from publishing.sync.pool import send_pools
from publishing.sync.revocations import READER as REVOCATIONS
from publishing.sync.watchpush import dispatch_watch_pushes
from registry.settings import Settings
from registry.wiring import Job, Plugin, follow_job


def _jobs(settings: Settings) -> Sequence[Job]:
    every = settings.sync.interval_seconds
    return [
        # Each pass only starts deliveries (one task per subscription, in a bounded pool) and
        # returns: no endpoint holds a pass; leases keep processes apart. A commit that appends
        # to the log wakes it at once.
        Job("sync_push_delivery", dispatch_due, every=every, first_after=0, wake_on_log=True),
        follow_job(
            NOTICES_JOB,
            notice_reader(settings.sync.notice_deadline_days),
            every=every,
            first_after=0,
        ),
        Job("watchlist_push", dispatch_watch_pushes, every=every),
        # Before the others in each tick, though nothing waits for it: see revocations.py.
        follow_job("sync_revocations", REVOCATIONS, every=every, first_after=0),
    ]


plugin = Plugin(
    name="sync",
    routes=[SubscriptionAdminController, SyncStatusController, AgencyFeedController, NoticeController],
    jobs=_jobs,
    cli=[sync_cli],
    resources=[send_pools],
)
