"""The per-address budget of the public correction services: applications and removal
certificates, each of which tries an identifier against a listing. Counted per client address
(IPv6 per /64) and China day, in Redis when REGISTRY_REDIS_URL is set (`registry.limits`),
else in the process. Every attempt counts, refused ones too: that is what makes guessing
identifiers against a listing slow. While the configured store does not answer, attempts are
refused, as exact-number lookups are (`registry.http.ratelimit.NumberLookupBudget`): counting
per process would multiply the budget by the number of web processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from registry.calendar import seconds_to_next_china_day, today_in_china
from registry.limits import DOWN_SECONDS
from registry.problems import Problem
from registry.runtime import Services
from registry.timeutil import utcnow

EXTENSION = "corrections_budget"
DAY_SECONDS = 86_400


class AddressBudget:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._local: dict[str, int] = {}
        self._day = today_in_china()
        self._lock = asyncio.Lock()

    async def spend(self, address: str) -> None:
        """Count one attempt of `address`; 429 `correction_budget_exhausted` past the budget,
        or while the shared store does not answer."""
        limit = self._services.settings.corrections.budget_per_address
        today = today_in_china()
        key = f"corrections:{today.isoformat()}:{address}"
        limits = self._services.limits
        if limits.shared:
            counted = await limits.window(key, limit, DAY_SECONDS)
            if counted is None:
                retry = int(DOWN_SECONDS) + 1
                raise Problem(
                    429,
                    "correction_budget_exhausted",
                    f"applications and certificate requests cannot be counted right now; retry in {retry} s",
                    extra={"retry_after": retry},
                )
            count = counted[0]
        else:
            async with self._lock:
                if today != self._day:
                    self._local.clear()
                    self._day = today
                count = self._local[address] = self._local.get(address, 0) + 1
        if count > limit:
            retry = seconds_to_next_china_day(utcnow())
            raise Problem(
                429,
                "correction_budget_exhausted",
                f"this address has used its {limit} applications and certificate requests for "
                "today (China time)",
                extra={"retry_after": retry},
            )


@asynccontextmanager
async def budget_resource(services: Services) -> AsyncIterator[None]:
    services.extensions[EXTENSION] = AddressBudget(services)
    yield


def budget_of(services: Services) -> AddressBudget:
    budget: AddressBudget = services.extensions[EXTENSION]
    return budget
