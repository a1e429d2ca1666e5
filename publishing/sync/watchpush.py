"""Pushes banks' watchlist changes (recorded by `registry.checks`) to the endpoints the banks
registered, signed exactly like agency pushes (RFC 9421 with the registry key).

Each bank's pending changes go in `seq` order, in batches; a batch is marked delivered only
after a 2xx, so a failure or a killed worker means it is sent again (receivers deduplicate
by `seq`). A worker holds a bank through a lease (`watch_registrations.lease_owner`,
`lease_until`), taken in a short transaction and renewed right before each request, so two
workers never push one bank's changes at once and nothing is held open across a request.
Failures in a row back off exponentially with jitter, as agency pushes do. Each bank runs
as its own task (`publishing.sync.pool`): one slow bank never delays another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
from sqlalchemy import Connection, or_, select, update

from publishing.sync.delivery import backoff_seconds, request_deadline, worker_id
from publishing.sync.outbound import endpoint_client, post
from publishing.sync.pool import WATCH_POOL, send_pool
from publishing.sync.services import ACTIVE_CLIENTS
from publishing.sync.signing import signed_request_headers
from registry.checks.models import WatchChange, WatchRegistration
from registry.endpoints import PushPolicy
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("publishing.sync.watchpush")


def _due(now: datetime) -> tuple[Any, ...]:
    pending = select(WatchChange.client_id).where(WatchChange.delivered_at.is_(None))
    return (
        WatchRegistration.endpoint.is_not(None),
        WatchRegistration.client_id.in_(pending),
        WatchRegistration.client_id.in_(ACTIVE_CLIENTS),  # a revoked bank receives nothing more
        or_(WatchRegistration.next_attempt_at.is_(None), WatchRegistration.next_attempt_at <= now),
        or_(WatchRegistration.lease_until.is_(None), WatchRegistration.lease_until < now),
    )


def claim_banks(
    conn: Connection, owner: str, now: datetime, lease: timedelta, limit: int, busy: frozenset[str]
) -> list[tuple[str, str]]:
    """(bank, endpoint) of banks with pending changes, due, not leased: now leased to `owner`."""
    if limit <= 0:
        return []
    due = _due(now)
    rows = conn.execute(
        select(WatchRegistration.client_id, WatchRegistration.endpoint)
        .where(*due, *([WatchRegistration.client_id.not_in(busy)] if busy else []))
        .order_by(WatchRegistration.next_attempt_at.is_not(None), WatchRegistration.client_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in rows:
        taken = conn.execute(
            update(WatchRegistration)
            .where(WatchRegistration.client_id == row.client_id, *due)
            .values(lease_owner=owner, lease_until=now + lease)
        ).rowcount
        if taken == 1:
            claimed.append((row.client_id, str(row.endpoint)))
    return claimed


def _batch(conn: Connection, client_id: str, size: int) -> list[tuple[int, Any]]:
    query = (
        select(WatchChange.seq, WatchChange.payload)
        .where(WatchChange.client_id == client_id, WatchChange.delivered_at.is_(None))
        .order_by(WatchChange.seq)
        .limit(size)
    )
    return [(row.seq, row.payload) for row in conn.execute(query)]


def _mine(client_id: str, owner: str) -> tuple[Any, ...]:
    return (WatchRegistration.client_id == client_id, WatchRegistration.lease_owner == owner)


def renew(conn: Connection, client_id: str, owner: str, until: datetime) -> bool:
    renewed = conn.execute(
        update(WatchRegistration)
        .where(*_mine(client_id, owner), WatchRegistration.client_id.in_(ACTIVE_CLIENTS))
        .values(lease_until=until)
    )
    return bool(renewed.rowcount == 1)


def delivered(conn: Connection, client_id: str, owner: str, seqs: list[int], now: datetime) -> bool:
    """Mark a batch delivered, if this worker still holds the bank."""
    moved = conn.execute(
        update(WatchRegistration)
        .where(*_mine(client_id, owner))
        .values(attempts=0, next_attempt_at=None, last_error=None, last_delivered_at=now)
    ).rowcount
    if moved != 1:
        return False
    conn.execute(
        update(WatchChange)
        .where(WatchChange.client_id == client_id, WatchChange.seq.in_(seqs))
        .values(delivered_at=now)
    )
    return True


def failed(
    conn: Connection, client_id: str, owner: str, error: str, now: datetime, base: float, cap: float
) -> None:
    row = conn.execute(select(WatchRegistration.attempts).where(*_mine(client_id, owner))).first()
    if row is None:
        return
    attempts = int(row.attempts) + 1
    conn.execute(
        update(WatchRegistration)
        .where(*_mine(client_id, owner))
        .values(
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=backoff_seconds(attempts, base, cap)),
            last_error=error,
            failures_total=WatchRegistration.failures_total + 1,
            lease_owner=None,
            lease_until=None,
        )
    )


def release(conn: Connection, client_id: str, owner: str) -> None:
    conn.execute(
        update(WatchRegistration).where(*_mine(client_id, owner)).values(lease_owner=None, lease_until=None)
    )


async def push_bank(services: Services, client_id: str, endpoint: str, owner: str) -> int:
    """Push one claimed bank's pending changes until drained, failed, or half the lease used."""
    deadline = request_deadline(services)
    async with endpoint_client(PushPolicy.from_settings(services.settings), deadline) as http:
        try:
            return await _push(services, http, client_id, endpoint, owner)
        finally:
            await services.db.write(release, client_id, owner)


async def _push(
    services: Services, http: httpx.AsyncClient, client_id: str, endpoint: str, owner: str
) -> int:
    sync = services.settings.sync
    lease = timedelta(seconds=sync.lease_seconds)
    stop_at = time.monotonic() + sync.lease_seconds / 2
    pushed = 0
    while time.monotonic() < stop_at:
        batch = await services.db.read(_batch, client_id, sync.batch_size)
        if not batch:
            break
        if not await services.db.write(renew, client_id, owner, utcnow() + lease):
            break  # revoked, or the lease was taken over
        error = await _post(services, http, endpoint, [payload for _, payload in batch])
        if error is not None:
            logger.warning("watchlist push failed: %s", error)
            await services.db.write(
                failed, client_id, owner, error, utcnow(), sync.backoff_base_seconds, sync.backoff_max_seconds
            )
            break
        if not await services.db.write(delivered, client_id, owner, [seq for seq, _ in batch], utcnow()):
            break
        pushed += len(batch)
    return pushed


async def _post(
    services: Services, http: httpx.AsyncClient, endpoint: str, payloads: list[Any]
) -> str | None:
    body = msgspec.json.encode({"changes": payloads})
    key = f"watch:{payloads[0]['seq']}-{payloads[-1]['seq']}"
    headers = signed_request_headers(services.signer, endpoint, body, key)
    return await post(
        http,
        endpoint,
        body,
        headers,
        deadline=request_deadline(services),
        max_answer_bytes=services.settings.push.response_max_bytes,
    )


async def _claim(services: Services, owner: str, limit: int, busy: frozenset[str]) -> list[tuple[str, str]]:
    lease = timedelta(seconds=services.settings.sync.lease_seconds)
    return await services.db.write(claim_banks, owner, utcnow(), lease, limit, busy)


async def dispatch_watch_pushes(services: Services) -> int:
    """The scheduler job: start a task per due bank in this process's pool, and return at
    once (a slow bank holds its own slot only). Returns how many banks it started."""
    pool = send_pool(services, WATCH_POOL)
    owner = worker_id()
    banks = await _claim(services, owner, pool.free, frozenset())
    for client_id, endpoint in banks:
        if pool.running(client_id):  # still running here from a lease that ran out: leave it
            await services.db.write(release, client_id, owner)
            continue
        pool.start(client_id, push_bank(services, client_id, endpoint, owner))
    return len(banks)


async def push_watch_changes(services: Services) -> int:
    """One complete pass (commands and tests): every due bank, concurrently; returns how many
    changes were pushed."""
    owner = worker_id()
    banks = await _claim(services, owner, services.settings.sync.max_parallel, frozenset())
    results = await asyncio.gather(
        *(push_bank(services, client_id, endpoint, owner) for client_id, endpoint in banks),
        return_exceptions=True,
    )
    pushed = 0
    for result in results:
        if isinstance(result, BaseException):
            logger.error("watchlist push failed: %s", type(result).__name__)
        else:
            pushed += result
    return pushed
