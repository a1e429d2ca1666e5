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
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import Connection, or_, select, update

from publishing.sync.models import Subscription
from publishing.sync.profiles import Profile
from publishing.sync.services import (
    RenderedEvent,
    SyncEvent,
    advance,
    for_subscription,
    profile_of,
    render_range,
    state_row,
)
from publishing.sync.signing import signed_request_headers
from registry.calendar import china_date
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


def release(conn: Connection, sub_id: str, owner: str) -> None:
    conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id, Subscription.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
    )


def _error_of(response: httpx.Response | None, exc: Exception | None) -> str:
    # Never the response body: an agency's error page is not ours to store.
    if response is not None:
        return f"HTTP {response.status_code}"
    return type(exc).__name__


Rendered = tuple[list[RenderedEvent], int]


class SharedRanges:
    """The log ranges of one delivery pass, each read, loaded, decrypted and rendered once per
    profile, whatever number of subscriptions of that profile the pass sends it to.

    Subscriptions of one profile that started together (an agency with several receivers,
    several agencies subscribed from one position) stay at the same cursors, so each range
    is asked for by all of them: the first asks the database, the others wait for the same
    result. The next range is read while this one is being sent (`prefetch`), so the
    database and the renderer work while the pass waits for receivers. Bounded: the oldest
    ranges are dropped first (a subscription that falls behind reads its own).
    """

    def __init__(self, services: Services, batch_size: int, capacity: int) -> None:
        self._services = services
        self._batch_size = batch_size
        self._capacity = max(2, capacity)
        self._ranges: OrderedDict[tuple[str, int], asyncio.Task[Rendered]] = OrderedDict()
        self.reads = 0

    def _task(self, profile: Profile, after: int) -> asyncio.Task[Rendered]:
        key = (profile.name, after)
        task = self._ranges.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(profile, after))
            task.add_done_callback(_retrieve)
            self._ranges[key] = task
            while len(self._ranges) > self._capacity:
                oldest = next(iter(self._ranges))
                if not self._ranges[oldest].done():
                    break  # still being read for someone: dropped once done
                del self._ranges[oldest]
        else:
            self._ranges.move_to_end(key)
        return task

    async def _read(self, profile: Profile, after: int) -> Rendered:
        self.reads += 1
        return await self._services.db.read(
            render_range,
            profile,
            after,
            self._batch_size,
            self._services.secrets.keyring,
            china_date(utcnow()),
        )

    async def get(self, profile: Profile, after: int) -> Rendered:
        # shield: one waiter cancelled (its lease lost) must not cancel the others' read.
        return await asyncio.shield(self._task(profile, after))

    def prefetch(self, profile: Profile, after: int) -> None:
        self._task(profile, after)

    def close(self) -> None:
        for task in self._ranges.values():
            task.cancel()
        self._ranges.clear()


def _retrieve(task: asyncio.Task[Rendered]) -> None:
    # A prefetched range nobody asked for: its failure is not an unretrieved exception
    # (whoever asks for it again reads it afresh and sees the error).
    if not task.cancelled():
        task.exception()


async def deliver_subscription(
    services: Services,
    http: httpx.AsyncClient,
    claim: Claim,
    owner: str,
    ranges: SharedRanges | None = None,
) -> int:
    """Send the backlog of one claimed subscription until drained, failed, or half the lease used."""
    settings = services.settings
    profile = profile_of(claim.profile)
    lease = timedelta(seconds=settings.sync.lease_seconds)
    deadline = time.monotonic() + settings.sync.lease_seconds / 2
    own = ranges is None
    ranges = ranges or SharedRanges(services, settings.sync.batch_size, 2)
    cursor, sent = claim.cursor, 0
    try:
        while time.monotonic() < deadline:
            rendered, scanned = await ranges.get(profile, cursor)
            if scanned == cursor:
                break
            ranges.prefetch(profile, scanned)
            events = for_subscription(claim.id, rendered)
            if events:
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
                logger.warning("subscription %s: lease lost, stopping", claim.id)
                return sent
            cursor, sent = scanned, sent + len(events)
    finally:
        if own:
            ranges.close()
        await services.db.write(release, claim.id, owner)
    return sent


async def _post(
    services: Services, http: httpx.AsyncClient, claim: Claim, events: list[SyncEvent]
) -> str | None:
    """POST one ordered batch; None on a 2xx, else what went wrong."""
    body = msgspec.json.encode({"subscription": claim.id, "events": events})
    key = f"{claim.id}:{events[0].seq}-{events[-1].seq}"
    headers = signed_request_headers(services.signer, claim.endpoint_url, body, key)
    try:
        response = await http.post(claim.endpoint_url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return _error_of(None, exc)
    return None if response.is_success else _error_of(response, None)


async def deliver_due(services: Services, owner: str | None = None) -> int:
    """One pass of the push worker: claim due subscriptions and deliver them concurrently.
    Returns how many events were acknowledged. Each pass is its own lease owner, so that a
    pass started while a long one runs serves only the subscriptions the long one has not."""
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
    timeout = httpx.Timeout(settings.sync.timeout_seconds)
    # Two ranges in hand per subscription (the one being sent, the next one being read).
    ranges = SharedRanges(services, settings.sync.batch_size, 2 * len(claims) + 2)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
            results: list[Any] = await asyncio.gather(
                *(deliver_subscription(services, http, claim, owner, ranges) for claim in claims),
                return_exceptions=True,
            )
    finally:
        ranges.close()
    delivered = 0
    for claim, result in zip(claims, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("subscription %s: delivery pass failed: %s", claim.id, type(result).__name__)
        else:
            delivered += result
    return delivered
