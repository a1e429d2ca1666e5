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

The removal lane: before each batch of a backlog longer than one batch, the removals beyond
it of listings the agency already holds whole (`services.lane_removals`) go first, in their
own request; the main lane passes over them when it gets there (docs/sync.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import Connection, case, or_, select, update

from publishing.sync.groupcommit import GroupCommit
from publishing.sync.models import Subscription
from publishing.sync.outbound import EndpointClients, post
from publishing.sync.pool import AGENCY_POOL, ENDPOINT_CLIENTS, SHARED_RANGES, group_commit, send_pool
from publishing.sync.profiles import Profile
from publishing.sync.services import (
    ACTIVE_CLIENTS,
    RenderedEvent,
    SyncEvent,
    advance,
    for_subscription,
    held_state,
    lane_removals,
    lane_sent,
    profile_of,
    record_lane,
    render_range,
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
    lease_until: datetime
    # The log head the claim saw: the log holds events after `cursor` up to it.
    head: int = 0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def claim_due(conn: Connection, owner: str, now: datetime, lease: timedelta, limit: int) -> list[Claim]:
    """Lease up to `limit` due subscriptions to `owner`, in one statement: the candidates
    (read `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that racing workers pass over each
    other's) are updated where they are still due, and the rows taken come back."""
    last_seq, _ = head(conn)
    due = (
        Subscription.mode == "push",
        Subscription.state == "active",
        Subscription.cursor < last_seq,
        Subscription.client_id.in_(ACTIVE_CLIENTS),
        or_(Subscription.next_attempt_at.is_(None), Subscription.next_attempt_at <= now),
        or_(Subscription.lease_until.is_(None), Subscription.lease_until < now),
    )
    candidates = (
        select(Subscription.id)
        .where(*due)
        .order_by(Subscription.next_attempt_at.is_not(None), Subscription.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    until = now + lease
    rows = conn.execute(
        update(Subscription)
        .where(Subscription.id.in_(candidates.scalar_subquery()), *due)
        .values(lease_owner=owner, lease_until=until)
        .returning(
            Subscription.id,
            Subscription.profile,
            Subscription.endpoint_url,
            Subscription.cursor,
            Subscription.attempts,
            Subscription.next_attempt_at,
        )
    ).all()
    return [
        Claim(row.id, row.profile, str(row.endpoint_url), int(row.cursor), int(row.attempts), until, last_seq)
        for row in sorted(rows, key=lambda row: (row.next_attempt_at is not None, row.id))
    ]


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
    values: dict[str, Any] = {
        "attempts": attempts,
        "next_attempt_at": None
        if failing
        else now
        + timedelta(
            seconds=backoff_seconds(
                attempts, settings.sync.backoff_base_seconds, settings.sync.backoff_max_seconds
            )
        ),
        "failures_total": Subscription.failures_total + 1,
        "last_error": error,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }
    if failing:
        # Only an active subscription is flagged: a pause committed while the request was in
        # flight (the lease is kept through it) stands until an admin resumes.
        values["state"] = case((Subscription.state == "active", "failing"), else_=Subscription.state)
    state = conn.execute(
        update(Subscription)
        .where(Subscription.id == sub_id, Subscription.lease_owner == owner)
        .values(**values)
        .returning(Subscription.state)
    ).scalar()
    if state == "failing":
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


def may_send(conn: Connection, sub_id: str, owner: str) -> bool:
    """`renew` without the write, for a lease this worker set long enough ago to outlast the
    request: still ours, active, its client not revoked."""
    row = conn.execute(
        select(Subscription.id).where(
            Subscription.id == sub_id,
            Subscription.lease_owner == owner,
            Subscription.state == "active",
            Subscription.client_id.in_(ACTIVE_CLIENTS),
        )
    ).first()
    return row is not None


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


Rendered = tuple[list[RenderedEvent], int]

# How long a range read for one delivery serves the others at the same cursor; "nothing
# after N" only for the deliveries asking at the same moment, since the log grows.
FRESH_SECONDS = 1.0
NOTHING_FRESH_SECONDS = 0.1
# Ranges kept per concurrent delivery: the one being sent, the next one being read, and two
# for deliveries of the same profile that fell a little behind (each waits on its own
# endpoint), so that they still find theirs.
RANGES_PER_DELIVERY = 4


class SharedRanges:
    """The log ranges of one delivery pass, each read, loaded, decrypted and rendered once per
    profile, whatever number of subscriptions of that profile the pass sends it to.

    Subscriptions of one profile that started together (an agency with several receivers,
    several agencies subscribed from one position) stay at the same cursors, so each range
    is asked for by all of them: the first asks the database, the others wait for the same
    result. The next range is read while this one is being sent (`prefetch`), so the
    database and the renderer work while the pass waits for receivers. Bounded: the oldest
    ranges are dropped first (a subscription that falls behind reads its own).

    The process keeps one (`shared_ranges`) for the deliveries its pool runs side by side,
    where ranges expire (a pass, `deliver_due`, keeps its own for its duration): a
    range is reused only while fresh (`FRESH_SECONDS` after it was read), and a range that
    found nothing new only for a moment: the log grows, and a stale "nothing after N" would
    hold every subscription at N.
    """

    def __init__(self, services: Services, batch_size: int, capacity: int, *, expiring: bool = True) -> None:
        self._services = services
        self._expiring = expiring
        self._batch_size = batch_size
        self._capacity = max(2, capacity)
        self._ranges: OrderedDict[tuple[str, int], tuple[asyncio.Task[Rendered], float]] = OrderedDict()
        self.reads = 0

    def _reusable(self, task: asyncio.Task[Rendered], started: float, after: int, head: int) -> bool:
        if not task.done():
            return True
        if task.cancelled() or task.exception() is not None:
            return False
        found_nothing = task.result()[1] == after
        if found_nothing and head > after:
            return False  # read before the log grew to the head the asker saw
        if not self._expiring:
            return True
        return time.monotonic() - started < (NOTHING_FRESH_SECONDS if found_nothing else FRESH_SECONDS)

    def _task(self, profile: Profile, after: int, head: int = 0) -> asyncio.Task[Rendered]:
        key = (profile.name, after)
        held = self._ranges.get(key)
        if held is not None and self._reusable(held[0], held[1], after, head):
            self._ranges.move_to_end(key)
            return held[0]
        task = asyncio.get_running_loop().create_task(self._read(profile, after))
        task.add_done_callback(_retrieve)
        self._ranges[key] = (task, time.monotonic())
        self._ranges.move_to_end(key)
        while len(self._ranges) > self._capacity:
            oldest = next(iter(self._ranges))
            if not self._ranges[oldest][0].done():
                break  # still being read for someone: dropped once done
            del self._ranges[oldest]
        return task

    async def _read(self, profile: Profile, after: int) -> Rendered:
        self.reads += 1
        return await self._services.db.read_in_thread(
            render_range,
            profile,
            after,
            self._batch_size,
            self._services.secrets.keyring,
            china_date(utcnow()),
        )

    async def get(self, profile: Profile, after: int, head: int = 0) -> Rendered:
        """The range after `after`. `head`: a log position the asker knows is committed (its
        claim's): "nothing after `after`" read before the log reached it is read again, so a
        delivery claimed for new events never releases its claim without sending them."""
        # shield: one waiter cancelled (its lease lost) must not cancel the others' read.
        found = await asyncio.shield(self._task(profile, after, head))
        if found[1] == after and head > after:  # a read that was under way before the head moved
            found = await asyncio.shield(self._task(profile, after, head))
        return found

    def prefetch(self, profile: Profile, after: int) -> None:
        self._task(profile, after)

    def close(self) -> None:
        for task, _ in self._ranges.values():
            task.cancel()
        self._ranges.clear()


def _retrieve(task: asyncio.Task[Rendered]) -> None:
    # A prefetched range nobody asked for: its failure is not an unretrieved exception
    # (whoever asks for it again reads it afresh and sees the error).
    if not task.cancelled():
        task.exception()


def shared_ranges(services: Services) -> SharedRanges:
    """This process's shared ranges (made on first use; `send_pools` closes them): the
    deliveries the pool runs at the same time ask it for the same ranges."""
    ranges = services.extensions.get(SHARED_RANGES)
    if ranges is None:
        settings = services.settings.sync
        ranges = services.extensions[SHARED_RANGES] = SharedRanges(
            services, settings.batch_size, RANGES_PER_DELIVERY * settings.max_parallel + 2
        )
    assert isinstance(ranges, SharedRanges)
    return ranges


def endpoint_clients(services: Services) -> EndpointClients:
    """This process's endpoint clients (made on first use; `send_pools` closes them)."""
    clients = services.extensions.get(ENDPOINT_CLIENTS)
    if clients is None:
        clients = services.extensions[ENDPOINT_CLIENTS] = EndpointClients(
            PushPolicy.from_settings(services.settings),
            request_deadline(services),
            2 * services.settings.sync.max_parallel,
        )
    assert isinstance(clients, EndpointClients)
    return clients


@dataclass(frozen=True)
class Pass:
    """What the deliveries running side by side share: the log ranges, each endpoint's
    client, and the group commit of their writes."""

    ranges: SharedRanges
    clients: EndpointClients
    writes: GroupCommit


def process_pass(services: Services) -> Pass:
    return Pass(shared_ranges(services), endpoint_clients(services), group_commit(services))


async def deliver_subscription(services: Services, claim: Claim, owner: str, shared: Pass) -> int:
    """Send the backlog of one claimed subscription until drained, failed, or half the lease
    used, over its endpoint's own client (no connection shared with another endpoint)."""
    async with shared.clients.client(claim.endpoint_url) as http:
        return await _deliver(services, http, claim, owner, shared)


async def _deliver(
    services: Services, http: httpx.AsyncClient, claim: Claim, owner: str, shared: Pass
) -> int:
    settings = services.settings
    profile = profile_of(claim.profile)
    lease = timedelta(seconds=settings.sync.lease_seconds)
    # A lease with this much left outlasts the next request (deadline at most half the lease)
    # with a margin: checked by a read, not renewed by a write.
    lease_margin = timedelta(seconds=request_deadline(services) + settings.sync.lease_seconds / 4)
    deadline = time.monotonic() + settings.sync.lease_seconds / 2
    write = shared.writes.write
    cursor, sent, held_until = claim.cursor, 0, claim.lease_until

    async def may_post() -> bool:
        """Right before each request, main lane or removal lane: the lease still ours, the
        subscription active, its client not revoked (renewed when it runs short)."""
        nonlocal held_until
        now = utcnow()
        if held_until - now >= lease_margin:
            ours = await services.db.read(may_send, claim.id, owner)
        else:
            held_until = now + lease
            ours = await write(renew, claim.id, owner, held_until)
        if not ours:
            await write(note_lease_lost, claim.id, owner, utcnow())
        return bool(ours)

    # The removal lane: the events it had acknowledged above the cursor (the main lane passes
    # over them) and how far it has looked for removals.
    lane = await services.db.read(lane_sent, claim.id)
    looked_to = cursor
    try:
        while time.monotonic() < deadline:
            rendered, scanned = await shared.ranges.get(profile, cursor, claim.head)
            if scanned == cursor:
                break
            shared.ranges.prefetch(profile, scanned)
            # A full range: more of the log may wait behind it, removals among it.
            if scanned - cursor >= settings.sync.batch_size:
                removals, looked_to = await _removal_lane(
                    services, http, claim, owner, shared, (cursor, max(scanned, looked_to)), lane, may_post
                )
                if removals is None:
                    return sent
                sent += removals
            events = for_subscription(claim.id, rendered, lane)
            if events:
                if not await may_post():
                    return sent
                error = await _post(services, http, claim, events)
                if error is not None:
                    await write(record_failure, claim.id, owner, error, utcnow(), services)
                    return sent
            now = utcnow()
            states = [held_state(claim.id, e, now) for e in events]
            passed = {seq for seq in lane if seq <= scanned}
            moved = await write(
                advance,
                claim.id,
                cursor,
                scanned,
                now,
                states,
                len(events),
                lease_owner=owner,
                lease_until=now + lease,
                lane_passed=bool(passed),
            )
            if not moved:
                await write(note_lease_lost, claim.id, owner, utcnow())
                return sent
            lane -= passed
            cursor, sent, held_until = scanned, sent + len(events), now + lease
    finally:
        await write(release, claim.id, owner)
    return sent


async def _removal_lane(
    services: Services,
    http: httpx.AsyncClient,
    claim: Claim,
    owner: str,
    shared: Pass,
    position: tuple[int, int],
    lane: set[int],
    may_post: Callable[[], Awaitable[bool]],
) -> tuple[int | None, int]:
    """Send, ahead of the backlog, the removals above `position[1]` whose listings the
    agency already holds whole (every earlier event at or below the cursor, `position[0]`),
    in one small request. Returns how many were acknowledged (None: stop delivering, the
    failure or the lost lease recorded) and the position looked up to."""
    cursor, after = position
    look = await services.db.read(
        lane_removals,
        profile_of(claim.profile),
        cursor,
        after,
        lane,
        services.secrets.keyring,
        china_date(utcnow()),
    )
    if not look.events:
        return 0, look.looked_to
    events = for_subscription(claim.id, look.events)
    if not await may_post():
        return None, look.looked_to
    error = await _post(services, http, claim, events, lane="removal")
    if error is not None:
        await shared.writes.write(record_failure, claim.id, owner, error, utcnow(), services)
        return None, look.looked_to
    now = utcnow()
    lease_until = now + timedelta(seconds=services.settings.sync.lease_seconds)
    if not await shared.writes.write(record_lane, claim.id, owner, events, now, lease_until):
        await shared.writes.write(note_lease_lost, claim.id, owner, utcnow())
        return None, look.looked_to
    lane.update(e.seq for e in events)
    return len(events), look.looked_to


async def _post(
    services: Services,
    http: httpx.AsyncClient,
    claim: Claim,
    events: list[SyncEvent],
    *,
    lane: str | None = None,
) -> str | None:
    """POST one ordered batch (`lane="removal"`: the removal lane's, marked so in the body
    and its idempotency key); None on a 2xx, else what went wrong (never the answer's body:
    an agency's error page is not ours to store)."""
    if lane is None:
        body = msgspec.json.encode({"subscription": claim.id, "events": events})
        key = f"{claim.id}:{events[0].seq}-{events[-1].seq}"
    else:
        body = msgspec.json.encode({"subscription": claim.id, "lane": lane, "events": events})
        key = f"{claim.id}:{lane}:{events[0].seq}-{events[-1].seq}"
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
    shared = process_pass(services)
    owner = worker_id()
    lease = timedelta(seconds=services.settings.sync.lease_seconds)
    claims = await shared.writes.write(claim_due, owner, utcnow(), lease, pool.free)
    for claim in claims:
        if pool.running(claim.id):  # still running here from a lease that ran out: leave it
            await shared.writes.write(release, claim.id, owner)
            continue
        pool.start(claim.id, deliver_subscription(services, claim, owner, shared))
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
    # The pass is short-lived: its ranges hold for the pass (what it found is what it sends);
    # it runs outside the process's resources (a command, tests), so it has its own clients.
    shared = Pass(
        SharedRanges(
            services, settings.sync.batch_size, RANGES_PER_DELIVERY * len(claims) + 2, expiring=False
        ),
        EndpointClients(PushPolicy.from_settings(settings), request_deadline(services), len(claims)),
        GroupCommit(services.db),
    )
    try:
        results: list[Any] = await asyncio.gather(
            *(deliver_subscription(services, claim, owner, shared) for claim in claims),
            return_exceptions=True,
        )
    finally:
        shared.ranges.close()
        await shared.writes.aclose()
        await shared.clients.aclose()
    delivered = 0
    for claim, result in zip(claims, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("subscription %s: delivery pass failed: %s", claim.id, type(result).__name__)
        else:
            delivered += result
    return delivered
