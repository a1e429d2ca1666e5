"""Isolation between endpoints: each subscription's (or bank's) delivery runs as its own
task in a bounded, per-process pool, so one slow or failing endpoint holds one slot for at
most a request's total deadline and never delays another subscription or another bank.

The scheduler's job only claims due work for the free slots and starts it; it returns at
once, so a pass never waits for an endpoint. Leases (in the database) keep processes apart;
the pool's keys keep one process from running the same subscription twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from publishing.sync.groupcommit import GroupCommit
from publishing.sync.outbound import EndpointClients
from registry.runtime import Services

logger = logging.getLogger("publishing.sync.pool")

AGENCY_POOL = "sync.agency_pushes"
WATCH_POOL = "sync.watchlist_pushes"
# The log ranges the agency deliveries share (`publishing.sync.delivery.SharedRanges`).
SHARED_RANGES = "sync.shared_ranges"
# Each endpoint's client, kept across passes (`publishing.sync.outbound.EndpointClients`).
ENDPOINT_CLIENTS = "sync.endpoint_clients"
# The deliveries' cursor moves and leases, committed together (`publishing.sync.groupcommit`).
GROUP_COMMIT = "sync.group_commit"


class SendPool:
    def __init__(self, size: int) -> None:
        self.size = size
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    @property
    def free(self) -> int:
        return max(0, self.size - len(self._tasks))

    def running(self, key: str) -> bool:
        return key in self._tasks

    def start(self, key: str, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work, name=f"push {key}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            logger.error("push %s failed: %s", key, type(task.exception()).__name__)

    async def wait(self) -> None:
        """Until every started delivery has finished (commands and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def group_commit(services: Services) -> GroupCommit:
    """This process's group commit for delivery writes (made on first use)."""
    writes = services.extensions.get(GROUP_COMMIT)
    if writes is None:
        writes = services.extensions[GROUP_COMMIT] = GroupCommit(services.db)
    assert isinstance(writes, GroupCommit)
    return writes


def send_pool(services: Services, name: str) -> SendPool:
    """This process's pool `name` (made on first use; `send_pools` closes them)."""
    pool = services.extensions.get(name)
    if pool is None:
        pool = services.extensions[name] = SendPool(services.settings.sync.max_parallel)
    assert isinstance(pool, SendPool)
    return pool


@asynccontextmanager
async def send_pools(services: Services) -> AsyncIterator[None]:
    """The process resource: deliveries in flight at shutdown are cancelled (their leases
    are released, or run out; what was not acknowledged is sent again)."""
    try:
        yield
    finally:
        for name in (AGENCY_POOL, WATCH_POOL):
            pool = services.extensions.pop(name, None)
            if isinstance(pool, SendPool):
                await pool.close()
        ranges = services.extensions.pop(SHARED_RANGES, None)
        if ranges is not None:
            ranges.close()
        # After the pools: the releases of the deliveries just cancelled commit first.
        writes = services.extensions.pop(GROUP_COMMIT, None)
        if isinstance(writes, GroupCommit):
            await writes.aclose()
        clients = services.extensions.pop(ENDPOINT_CLIENTS, None)
        if isinstance(clients, EndpointClients):
            await clients.aclose()
