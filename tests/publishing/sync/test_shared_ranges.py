"""A delivery claimed for new log events sends them: a shared range that found "nothing after
N" before the log grew is not handed to a delivery whose claim saw the log beyond N (it used
to claim, send nothing and release, and the events waited for the next pass)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from publishing.sync.delivery import SharedRanges
from publishing.sync.profiles import PROFILES
from registry.runtime import Services
from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import publish_one


def _head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def test_nothing_read_before_the_claimed_head_is_read_again(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    profile = PROFILES["credit_reference"]
    before = _head(registry.engine)

    async def main() -> tuple[list[int], list[int], list[int], int]:
        services = Services.create(settings)
        # Kept for the whole pass, as `deliver_due` keeps them: the staleness is not a timing matter.
        ranges = SharedRanges(services, batch_size=10, capacity=6, expiring=False)
        try:
            nothing, _ = await ranges.get(profile, before)
            await asyncio.to_thread(publish_one, registry, court, registry.listing(court))
            after = _head(registry.engine)
            unaware, _ = await ranges.get(profile, before)  # no claim: the pass's own answer
            claimed, scanned = await ranges.get(profile, before, after)
            return [e.seq for e in nothing], [e.seq for e in unaware], [e.seq for e in claimed], scanned
        finally:
            ranges.close()
            await services.close()

    nothing, unaware, claimed, scanned = asyncio.run(main())
    after = _head(registry.engine)
    assert nothing == [] and unaware == []
    assert claimed == [after] and scanned == after
