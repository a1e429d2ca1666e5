"""The court contract: listing routes, the expiry of fixed terms, `registry import|expire`."""

from __future__ import annotations

from collections.abc import Sequence

from registry.listings.cli import expire, import_command
from registry.listings.controllers import ListingController, RemovalReportController
from registry.listings.jobs import expire_fixed_terms
from registry.settings import Settings
from registry.wiring import Job, Plugin


def _jobs(settings: Settings) -> Sequence[Job]:
    return [
        Job(
            "expire_fixed_terms",
            expire_fixed_terms,
            every=settings.listings.expiry_interval_seconds,
            first_after=5,
        ),
        # A term ends with its last day: the listing leaves the public list as the next China
        # day starts, not up to an interval later. Run late rather than skipped after a pause.
        Job(
            "expire_fixed_terms_at_midnight",
            expire_fixed_terms,
            every={"hour": 0, "minute": 0, "second": 0},
            misfire_grace_seconds=3600,
        ),
    ]


plugin = Plugin(
    name="listings",
    routes=[ListingController, RemovalReportController],
    jobs=_jobs,
    cli=[import_command, expire],
)
