"""Media feeds and the delta API, kept by a reader of the event log."""

from __future__ import annotations

from collections.abc import Sequence

from publishing.feeds.cli import feeds
from publishing.feeds.controllers import FeedController, PublicationController
from publishing.feeds.reader import JOB, follow_publications
from registry.settings import Settings
from registry.wiring import Job, Plugin


def _jobs(settings: Settings) -> Sequence[Job]:
    return [
        Job(
            JOB,
            follow_publications,
            every=settings.feeds.publications_interval_seconds,
            wake_on_log=True,
        )
    ]


plugin = Plugin(name="feeds", public_routes=[FeedController, PublicationController], jobs=_jobs, cli=[feeds])
