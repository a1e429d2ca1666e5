"""Shared steps for the feeds, exports and transparency-log tests: publish and remove over
HTTP as a court would, and run the log readers the scheduler would run."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import sqlalchemy as sa

from publishing.feeds.reader import READER as FEEDS
from publishing.sync.delivery import deliver_due
from registry.eventlog.readers import follow_sync, step
from registry.identity.registry_key import RegistrySigner, load_registry_signer
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from registry.translog.services import READER as TRANSLOG
from registry.translog.services import make_checkpoint
from tests.support.harness import CourtHandle, Registry


def publish(registry: Registry, court: CourtHandle, count: int, **overrides: Any) -> list[str]:
    envelopes = [registry.envelope(court, registry.listing(court, **overrides)) for _ in range(count)]
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert all(r["outcome"] == "created" for r in results), results
    return [str(r["listing_id"]) for r in results]


def remove(registry: Registry, court: CourtHandle, listing_id: str, reason: str = "performed") -> date:
    today = registry.today
    body = {
        "listing_id": listing_id,
        "reason": reason,
        "effective_on": today.isoformat(),
        "triggered_on": today.isoformat(),
        "basis_document": "（2024）京0105执恢12号之一",
    }
    with registry.http(court.api_key) as http:
        response = http.post(
            f"/v1/listings/{listing_id}/removal", json=registry.envelope(court, body, "removal")
        )
    assert response.status_code == 200, response.text
    return today


def sync_feeds(engine: sa.Engine) -> None:
    follow_sync(engine, FEEDS)


def signer(settings: Settings) -> RegistrySigner:
    return load_registry_signer(settings)


def checkpoint(engine: sa.Engine, settings: Settings) -> int | None:
    """What the scheduler's log job does: append every pending event, then sign."""
    follow_sync(engine, TRANSLOG)
    with engine.begin() as conn:
        return make_checkpoint(conn, signer(settings), settings.translog.origin, utcnow())


def grow(engine: sa.Engine, settings: Settings, events: int) -> int | None:
    """Log only the next `events` events of the log, then sign: a checkpoint mid-way."""
    with engine.begin() as conn:
        step(conn, replace(TRANSLOG, batch=events), utcnow())
    with engine.begin() as conn:
        return make_checkpoint(conn, signer(settings), settings.translog.origin, utcnow())


async def deliver_once(settings: Settings, worker: str = "test-worker") -> int:
    """One delivery pass, as a worker's scheduled job runs it."""
    services = Services.create(settings)
    try:
        return await deliver_due(services, worker)
    finally:
        await services.close()
