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
from publishing.sync.delivery import deliver_due
from publishing.sync.notices import notice_reader
from publishing.sync.watchpush import push_watch_changes
from registry.settings import Settings
from registry.wiring import Job, Plugin, follow_job


def _jobs(settings: Settings) -> Sequence[Job]:
    every = settings.sync.interval_seconds
    return [
        # Passes may overlap (a long backlog keeps one busy while the next serves other
        # subscriptions); leases keep passes and processes apart.
        Job(
            "sync_push_delivery",
            deliver_due,
            every=every,
            first_after=0,
            max_instances=4,
            wake_on_log=True,
        ),
        follow_job(
            "assistance_notices",
            notice_reader(settings.sync.notice_deadline_days),
            every=every,
            first_after=0,
        ),
        Job("watchlist_push", push_watch_changes, every=every),
    ]


plugin = Plugin(
    name="sync",
    routes=[SubscriptionAdminController, SyncStatusController, AgencyFeedController, NoticeController],
    jobs=_jobs,
    cli=[sync_cli],
)
