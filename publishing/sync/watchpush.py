"""Pushes banks' watchlist changes (recorded by `registry.checks`) to the endpoints the banks
registered, signed exactly like agency pushes (RFC 9421 with the registry key).

Each bank's pending changes go in `seq` order, in batches; a batch is marked delivered only
after a 2xx, so a failure or a killed worker means it is sent again next pass (receivers
deduplicate by `seq`). On PostgreSQL the batch's rows stay locked `FOR UPDATE SKIP LOCKED`
while the request is in flight, so two workers never push the same change at once; on
SQLite one worker runs and nothing is held open across the request, which would block
every writer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from publishing.sync.outbound import endpoint_client, post
from publishing.sync.signing import signed_request_headers
from registry.checks.models import WatchChange, WatchRegistration
from registry.clients.models import ApiClient
from registry.endpoints import PushPolicy
from registry.runtime import Services
from registry.timeutil import utcnow

logger = logging.getLogger("publishing.sync.watchpush")


async def _pending_banks(conn: AsyncConnection, limit: int) -> list[tuple[str, str]]:
    rows = await conn.execute(
        select(WatchChange.client_id, WatchRegistration.endpoint)
        .join(WatchRegistration, WatchRegistration.client_id == WatchChange.client_id)
        .where(
            WatchChange.delivered_at.is_(None),
            WatchRegistration.endpoint.is_not(None),
            WatchChange.client_id.in_(select(ApiClient.id).where(ApiClient.revoked_at.is_(None))),
        )
        .group_by(WatchChange.client_id, WatchRegistration.endpoint)
        .limit(limit)
    )
    return [(row.client_id, row.endpoint) for row in rows]


async def _batch(conn: AsyncConnection, client_id: str, size: int, lock: bool) -> list[tuple[int, Any]]:
    query = (
        select(WatchChange.seq, WatchChange.payload)
        .where(WatchChange.client_id == client_id, WatchChange.delivered_at.is_(None))
        .order_by(WatchChange.seq)
        .limit(size)
    )
    if lock:
        query = query.with_for_update(skip_locked=True)
    return [(row.seq, row.payload) for row in await conn.execute(query)]


async def _post(services: Services, http: httpx.AsyncClient, endpoint: str, payloads: list[Any]) -> bool:
    body = msgspec.json.encode({"changes": payloads})
    key = f"watch:{payloads[0]['seq']}-{payloads[-1]['seq']}"
    headers = signed_request_headers(services.signer, endpoint, body, key)
    error = await post(
        http,
        endpoint,
        body,
        headers,
        deadline=services.settings.sync.timeout_seconds,
        max_answer_bytes=services.settings.push.response_max_bytes,
    )
    if error is not None:
        logger.warning("watchlist push failed: %s", error)
    return error is None


async def _mark_delivered(conn: AsyncConnection, client_id: str, seqs: list[int]) -> None:
    await conn.execute(
        update(WatchChange)
        .where(WatchChange.client_id == client_id, WatchChange.seq.in_(seqs))
        .values(delivered_at=utcnow())
    )


async def _push_bank(services: Services, http: httpx.AsyncClient, client_id: str, endpoint: str) -> int:
    size = services.settings.sync.batch_size
    locking = services.db.writer.dialect.name == "postgresql"
    pushed = 0
    while True:
        if locking:
            async with services.db.writer.begin() as conn:
                batch = await _batch(conn, client_id, size, lock=True)
                if not batch or not await _post(services, http, endpoint, [p for _, p in batch]):
                    return pushed
                await _mark_delivered(conn, client_id, [seq for seq, _ in batch])
        else:
            async with services.db.reader.connect() as conn:
                batch = await _batch(conn, client_id, size, lock=False)
            if not batch or not await _post(services, http, endpoint, [p for _, p in batch]):
                return pushed
            async with services.db.writer.begin() as conn:
                await _mark_delivered(conn, client_id, [seq for seq, _ in batch])
        pushed += len(batch)


async def _push_one(services: Services, client_id: str, endpoint: str) -> int:
    policy = PushPolicy.from_settings(services.settings)
    async with endpoint_client(policy, services.settings.sync.timeout_seconds) as http:
        return await _push_bank(services, http, client_id, endpoint)


async def push_watch_changes(services: Services) -> int:
    """One pass: every bank with pending changes and an endpoint; returns how many were pushed."""
    settings = services.settings
    async with services.db.reader.connect() as conn:
        banks = await _pending_banks(conn, settings.sync.max_parallel)
    if not banks:
        return 0
    results = await asyncio.gather(
        *(_push_one(services, client_id, endpoint) for client_id, endpoint in banks),
        return_exceptions=True,
    )
    pushed = 0
    for result in results:
        if isinstance(result, BaseException):
            logger.error("watchlist push pass failed: %s", type(result).__name__)
        else:
            pushed += result
    return pushed
