"""The court contract: listing routes, the expiry of fixed terms, `registry import|expire`."""

from __future__ import annotations

from collections.abc import Sequence

from registry.listings.cli import expire, import_command
from registry.listings.controllers import ListingController
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
        )
    ]


plugin = Plugin(name="listings", routes=[ListingController], jobs=_jobs, cli=[import_command, expire])
