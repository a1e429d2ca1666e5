"""Push delivery: an APScheduler job that sends each push subscription's backlog, in log
order, in small signed batches, and moves the cursor only after a 2xx.

Claiming: a worker takes a lease on a subscription (`lease_owner`, `lease_until`) in a
short transaction; on PostgreSQL the candidates are read `FOR UPDATE SKIP LOCKED`, so
workers racing for the same rows pass over each other instead of queueing. The cursor
update is conditional on still holding the lease, so a worker that stalled past its
lease cannot move a cursor another worker has taken over. A worker killed at any moment
loses nothing: the cursor has not moved past what was not acknowledged, and its lease
runs out. What was sent but not yet recorded is sent again: receivers deduplicate by the
`idempotency_key` of each event (`<subscription>:<seq>`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import Connection, or_, select, update

from publishing.sync.models import Subscription
from publishing.sync.outbound import endpoint_client, post
from publishing.sync.pool import AGENCY_POOL, send_pool
from publishing.sync.services import (
    ACTIVE_CLIENTS,
    SyncEvent,
    advance,
    collect_events,
    profile_of,
    state_row,
)
from publishing.sync.signing import signed_request_headers
from registry.calendar import china_date
from registry.endpoints import PushPolicy
from registry.eventlog.services import head
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("publishing.sync.delivery")
_jitter = secrets.SystemRandom()


@dataclass(frozen=True)
class Claim:
    id: str
    profile: str
    endpoint_url: str
    cursor: int
    attempts: int


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def claim_due(conn: Connection, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Claim]:
    last_seq, _ = head(conn)
    due = (
        Subscription.mode == "push",
        Subscription.state == "active",
        Subscription.cursor < last_seq,
        Subscription.client_id.in_(ACTIVE_CLIENTS),
        or_(Subscription.next_attempt_at.is_(None), Subscription.next_attempt_at <= now),
        or_(Subscription.lease_until.is_(None), Subscription.lease_until < now),
    )
    rows = conn.execute(
        select(
            Subscription.id,
            Subscription.profile,
            Subscription.endpoint_url,
            Subscription.cursor,
            Subscription.attempts,
        )
        .where(*due)
        .order_by(Subscription.next_attempt_at.is_not(None), Subscription.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claims = []
    for row in rows:
        taken = conn.execute(
            update(Subscription)
            .where(Subscription.id == row.id, *due)
            .values(lease_owner=owner, lease_until=now + lease)
        ).rowcount
        if taken == 1:
            claims.append(
                Claim(row.id, row.profile, str(row.endpoint_url), int(row.cursor), int(row.attempts))
            )
    return claims


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: half the delay fixed, half random ("equal jitter"),
    so that agencies recovering together are not hit by every registry worker at once."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return float(delay / 2 + _jitter.uniform(0, delay / 2))


def record_failure(
    conn: Connection, sub_id: str, owner: str, error: str, now: datetime, services: Services
) -> None:
    settings = services.settings
    row = conn.execute(
        select(Subscription.attempts).where(Subscription.id == sub_id, Subscription.lease_owner == owner)
    ).first()
    if row is None:
        return
    attempts = int(row.attempts) + 1
    failing = attempts >= settings.sync.max_attempts
    conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id, Subscription.lease_owner == owner)
        .values(
            attempts=attempts,
            state="failing" if failing else "active",
            next_attempt_at=None
            if failing
            else now
            + timedelta(
                seconds=backoff_seconds(
                    attempts, settings.sync.backoff_base_seconds, settings.sync.backoff_max_seconds
                )
            ),
            failures_total=Subscription.failures_total + 1,
            last_error=error,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )
    if failing:
        logger.warning("subscription %s flagged failing after %d attempts: %s", sub_id, attempts, error)


def renew(conn: Connection, sub_id: str, owner: str, until: datetime) -> bool:
    """Right before each request: extend the lease, if this worker still holds it and the
    subscription may still receive (active, its client not revoked, not paused meanwhile)."""
    renewed = conn.execute(
        update(Subscription)
        .where(
            Subscription.id == sub_id,
            Subscription.lease_owner == owner,
            Subscription.state == "active",
            Subscription.client_id.in_(ACTIVE_CLIENTS),
        )
        .values(lease_until=until)
    )
    return bool(renewed.rowcount == 1)


def note_lease_lost(conn: Connection, sub_id: str, owner: str, now: datetime) -> bool:
    """After a renewal or a cursor move was refused: if another worker now holds the lease
    (ours ran out under us), count it in the status and metrics; a revocation or a pause is
    not a lost lease. Returns whether it was one."""
    row = conn.execute(
        select(Subscription.lease_owner, Subscription.state).where(Subscription.id == sub_id)
    ).first()
    if row is None or row.lease_owner == owner or row.state != "active":
        if row is not None and row.lease_owner != owner:
            logger.info("subscription %s: no longer ours to send (%s)", sub_id, row.state)
        return False
    logger.warning("subscription %s: lease lost to another worker, stopping", sub_id)
    conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id)
        .values(lease_lost_total=Subscription.lease_lost_total + 1, last_lease_lost_at=now)
    )
    return True


def release(conn: Connection, sub_id: str, owner: str) -> None:
    conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id, Subscription.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def request_deadline(services: Services) -> float:
    """Seconds one push request may take in all: the setting, and never more than half the
    lease, so that a request cannot outlive the lease renewed right before it."""
    return min(services.settings.sync.timeout_seconds, services.settings.sync.lease_seconds / 2)


async def deliver_subscription(services: Services, claim: Claim, owner: str) -> int:
    """Send the backlog of one claimed subscription until drained, failed, or half the lease
    used, over a client of its own (no connection shared with another endpoint)."""
    async with endpoint_client(
        PushPolicy.from_settings(services.settings), request_deadline(services)
    ) as http:
        return await _deliver(services, http, claim, owner)


async def _deliver(services: Services, http: httpx.AsyncClient, claim: Claim, owner: str) -> int:
    settings = services.settings
    profile = profile_of(claim.profile)
    lease = timedelta(seconds=settings.sync.lease_seconds)
    deadline = time.monotonic() + settings.sync.lease_seconds / 2
    cursor, sent = claim.cursor, 0
    try:
        while time.monotonic() < deadline:
            keyring = services.secrets.keyring
            today = china_date(utcnow())
            events, scanned = await services.db.read(
                collect_events, claim.id, profile, cursor, settings.sync.batch_size, keyring, today
            )
            if scanned == cursor:
                break
            if events:
                if not await services.db.write(renew, claim.id, owner, utcnow() + lease):
                    await services.db.write(note_lease_lost, claim.id, owner, utcnow())
                    return sent
                error = await _post(services, http, claim, events)
                if error is not None:
                    await services.db.write(record_failure, claim.id, owner, error, utcnow(), services)
                    return sent
            now = utcnow()
            states = [
                state_row(
                    claim.id,
                    e.listing_id,
                    e.listing_version,
                    e.type,
                    e.seq,
                    datetime.fromisoformat(e.occurred_at),
                    now,
                )
                for e in events
            ]
            moved = await services.db.write(
                advance,
                claim.id,
                cursor,
                scanned,
                now,
                states,
                len(events),
                lease_owner=owner,
                lease_until=now + lease,
            )
            if not moved:
                await services.db.write(note_lease_lost, claim.id, owner, utcnow())
                return sent
            cursor, sent = scanned, sent + len(events)
    finally:
        await services.db.write(release, claim.id, owner)
    return sent


async def _post(
    services: Services, http: httpx.AsyncClient, claim: Claim, events: list[SyncEvent]
) -> str | None:
    """POST one ordered batch; None on a 2xx, else what went wrong (never the answer's body:
    an agency's error page is not ours to store)."""
    body = msgspec.json.encode({"subscription": claim.id, "events": events})
    key = f"{claim.id}:{events[0].seq}-{events[-1].seq}"
    headers = signed_request_headers(services.signer, claim.endpoint_url, body, key)
    return await post(
        http,
        claim.endpoint_url,
        body,
        headers,
        deadline=request_deadline(services),
        max_answer_bytes=services.settings.push.response_max_bytes,
    )


async def dispatch_due(services: Services) -> int:
    """The scheduler job: claim due subscriptions for this process's free slots, start each
    as its own task (`publishing.sync.pool`), and return at once: a pass never waits for an
    endpoint, so one slow or failing agency never delays another. Returns how many started."""
    pool = send_pool(services, AGENCY_POOL)
    if pool.free == 0:
        return 0
    owner = worker_id()
    lease = timedelta(seconds=services.settings.sync.lease_seconds)
    claims = await services.db.write(claim_due, owner, utcnow(), lease, pool.free)
    for claim in claims:
        if pool.running(claim.id):  # still running here from a lease that ran out: leave it
            await services.db.write(release, claim.id, owner)
            continue
        pool.start(claim.id, deliver_subscription(services, claim, owner))
    return len(claims)


async def deliver_due(services: Services, owner: str | None = None) -> int:
    """One complete pass (`registry sync deliver`, tests): claim due subscriptions, deliver
    them concurrently and wait for all. Returns how many events were acknowledged. Each pass
    is its own lease owner, so that a pass started while a long one runs serves only the
    subscriptions the long one has not."""
    settings = services.settings
    owner = owner or worker_id()
    claims = await services.db.write(
        claim_due,
        owner,
        utcnow(),
        timedelta(seconds=settings.sync.lease_seconds),
        settings.sync.max_parallel,
    )
    if not claims:
        return 0
    results: list[Any] = await asyncio.gather(
        *(deliver_subscription(services, claim, owner) for claim in claims), return_exceptions=True
    )
    delivered = 0
    for claim, result in zip(claims, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("subscription %s: delivery pass failed: %s", claim.id, type(result).__name__)
        else:
            delivered += result
    return delivered
