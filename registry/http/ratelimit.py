"""Per-client rate limits on the public endpoints: the search API, the web page, later the feeds.

Litestar's `RateLimitMiddleware` does the counting (a fixed window per client that starts at
its first request, kept in the app's `public_rate_limit` store). This module adds what it
lacks for a public list:

- scope: the limit sits on one `Router` that holds every public handler (`public_router`), so
  the authenticated court/bank/admin API is never throttled by it, and a later public
  endpoint (feeds, exports) is limited by being registered there. All public handlers share
  one budget per client;
- the answer: 429 as RFC 9457 problem+json with the stable code `rate_limited` and
  `Retry-After` (Litestar sends only the draft `RateLimit-*` headers and a plain error); a
  number lookup refused by its own, tighter budget (`NumberLookupBudget`) answers with that
  budget's `RateLimit-*` headers and says so, the general budget's headers left off;
- the client key: an IPv6 client is counted per /64, the block one subscriber usually holds,
  or a single host could rotate through addresses without limit;
- memory: Litestar's `MemoryStore` drops an expired key only when that key is read again, so
  the keys of clients that never return are swept once a window.

- several processes: with REGISTRY_REDIS_URL every web process counts in one shared window
  per client (`registry.limits.SharedLimits.window`, one Lua script); without it, or while
  the store does not answer, each process counts its own share in memory (a `MemoryStore`):
  the limit then holds per process, so an outage of the store never stops public search.

The client address is the socket peer; behind a reverse proxy, list the proxy in
REGISTRY_FORWARDED_ALLOW_IPS (`service.app.forwarded_headers`) so that the client is the
address it forwards; nobody's forwarded headers are believed by default.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from litestar import Request, Response, Router
from litestar.datastructures.headers import MutableScopeHeaders
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import (
    DURATION_VALUES,
    CacheObject,
    DurationUnit,
    RateLimitConfig,
    RateLimitMiddleware,
)
from litestar.stores.memory import MemoryStore
from litestar.types import ControllerRouterHandler, Message, Receive, Scope, Send

from registry.limits import DOWN_SECONDS, SharedLimits
from registry.problems import Problem, problem_response

STORE = "public_rate_limit"
RESET_HEADER = "RateLimit-Reset"
# The draft headers, as Litestar's RateLimitConfig names them by default.
RATE_LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining", RESET_HEADER)


class NumberLookupRefused(TooManyRequestsException):
    """A number lookup refused by its own budget: spent, or (`spent` false) not countable while
    the shared store does not answer. Its headers and reason are that budget's, not the
    general public one's (which the middleware then leaves alone)."""

    def __init__(self, detail: str, headers: dict[str, str], *, spent: bool) -> None:
        super().__init__(detail=detail, headers=headers)
        self.spent = spent


def parse_rate(value: str) -> tuple[DurationUnit, int] | None:
    """`"60/minute"` -> `("minute", 60)`; `"off"` -> None. The setting's pattern has checked the form."""
    if value == "off":
        return None
    count, unit = value.split("/")
    return cast(DurationUnit, unit), int(count)


def client_key(request: Request[Any, Any, Any]) -> str:
    """The address a client is counted under: IPv4 as is, IPv6 by its /64."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass
class PublicRateLimitConfig(RateLimitConfig):
    # Shared by the middleware instances Litestar builds for each route, so one sweep a window.
    next_sweep: float = 0.0


class SweepingRateLimitMiddleware(RateLimitMiddleware):
    def create_send_wrapper(self, send: Send, cache_object: CacheObject) -> Send:
        """The general budget's draft headers on every answer, except one that already
        carries a budget's own (a number lookup refused by its tighter budget): a 429 must
        not pair that budget's Retry-After with this one's limit, remaining and reset."""

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableScopeHeaders(message)
                if not any(name in headers for name in RATE_LIMIT_HEADERS):
                    for key, value in self.create_response_headers(cache_object=cache_object).items():
                        headers[key] = value
            await send(message)

        return send_wrapper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["litestar_app"]
        services = getattr(app.state, "services", None)
        if services is not None and services.limits.shared:
            request: Request[Any, Any, Any] = app.request_class(scope)
            window = DURATION_VALUES[self.unit]
            counted = await services.limits.window(
                "public:" + self.cache_key_from_request(request), self.max_requests, window
            )
            if counted is not None:
                count, reset = counted
                # The draft headers as Litestar makes them, from the shared count.
                cache = CacheObject(
                    history=[0] * min(count, self.max_requests), reset=int(time.time()) + reset
                )
                headers = self.create_response_headers(cache)
                if count > self.max_requests:
                    raise TooManyRequestsException(headers=headers)
                await self.app(scope, receive, self.create_send_wrapper(send, cache))
                return
        config = cast(PublicRateLimitConfig, self.config)
        now = time.monotonic()
        if now >= config.next_sweep:
            config.next_sweep = now + DURATION_VALUES[self.unit]
            store = config.get_store_from_app(scope["litestar_app"])
            if isinstance(store, MemoryStore):
                await store.delete_expired()
        await super().__call__(scope, receive, send)


def retry_after_seconds(exc: TooManyRequestsException) -> int:
    """Seconds until the client's window ends (from the middleware's reset header), at least 1."""
    reset = (exc.headers or {}).get(RESET_HEADER, "1")
    return max(1, int(reset))


def rate_limit_headers(exc: TooManyRequestsException) -> dict[str, str]:
    return {**(exc.headers or {}), "Retry-After": str(retry_after_seconds(exc))}


def rate_limited_problem(_request: Request[Any, Any, Any], exc: TooManyRequestsException) -> Response[Any]:
    seconds = retry_after_seconds(exc)
    reason = exc.detail if isinstance(exc, NumberLookupRefused) else "too many requests from this address"
    response = problem_response(
        Problem(429, "rate_limited", f"{reason}; retry in {seconds} s", extra={"retry_after": seconds})
    )
    response.headers.update(rate_limit_headers(exc))
    return response


def public_router(rate_limit: str, route_handlers: Sequence[ControllerRouterHandler]) -> Router:
    """One router for every public handler, under the public rate limit (`"off"` for none)."""
    rate = parse_rate(rate_limit)
    middleware = []
    if rate is not None:
        config = PublicRateLimitConfig(
            rate_limit=rate,
            identifier_for_request=client_key,
            middleware_class=SweepingRateLimitMiddleware,
            store=STORE,
        )
        middleware.append(config.middleware)
    return Router(
        path="/",
        route_handlers=list(route_handlers),
        middleware=middleware,
        exception_handlers={TooManyRequestsException: rate_limited_problem},
    )


class NumberLookupBudget:
    """Exact-number lookups per client address (REGISTRY_PUBLIC_NUMBER_LOOKUP_LIMIT): a budget
    of their own, within the public one. A number lookup confirms or refutes a guess, so this
    budget is what bounds walking through the candidates a public mask leaves (docs/privacy.md).

    Shared across processes through the limit store when there is one; while it does not
    answer, lookups are refused (an overshoot here costs more than an outage). Without a
    store, each process counts its own fixed windows.
    """

    def __init__(self, rate: str, limits: SharedLimits) -> None:
        parsed = parse_rate(rate)
        self.rate = rate
        self.limit = None if parsed is None else parsed[1]
        self.seconds = 0 if parsed is None else DURATION_VALUES[parsed[0]]
        self.limits = limits
        self._windows: dict[str, tuple[float, int]] = {}

    def _refused(self, detail: str, reset: int, *, spent: bool = True) -> NumberLookupRefused:
        """The 429 of this budget: its own draft headers (its limit, none remaining, its reset)
        and a reason that names it; never the number asked for."""
        limit = cast(int, self.limit)
        return NumberLookupRefused(
            detail=detail,
            headers={
                "RateLimit-Policy": f"{limit}; w={self.seconds}",
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": "0",
                RESET_HEADER: str(reset),
            },
            spent=spent,
        )

    async def charge(self, request: Request[Any, Any, Any]) -> None:
        """Count one lookup; NumberLookupRefused (with the reset) when over the budget."""
        if self.limit is None:
            return
        key = client_key(request)
        if self.limits.shared:
            counted = await self.limits.window("numbers:" + key, self.limit, self.seconds)
            if counted is None:
                raise self._refused(
                    "exact-number lookups cannot be counted at the moment, so none is answered "
                    "(searches by name go on)",
                    int(DOWN_SECONDS) + 1,
                    spent=False,
                )
            count, reset = counted
        else:
            now = time.monotonic()
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            ends, count = self._windows.get(key, (0.0, 0))
            if ends <= now:
                ends, count = now + self.seconds, 0
            count += 1
            self._windows[key] = (ends, count)
            reset = max(1, int(ends - now + 0.999))
        if count > self.limit:
            raise self._refused(
                f"this address has spent its exact-number lookup budget ({self.rate}, "
                "REGISTRY_PUBLIC_NUMBER_LOOKUP_LIMIT); searches by name go on",
                max(1, reset),
            )


async def charge_number_lookup(request: Request[Any, Any, Any]) -> None:
    """Charge the app's number-lookup budget (made on first use, one per process)."""
    services = request.app.state.services
    budget = services.extensions.get("number_lookup_budget")
    if budget is None:
        budget = NumberLookupBudget(services.settings.server.public_number_lookup_limit, services.limits)
        services.extensions["number_lookup_budget"] = budget
    await budget.charge(request)
