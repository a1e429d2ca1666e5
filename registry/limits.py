"""Rate limits shared by every web process through Redis (REGISTRY_REDIS_URL), each counted by
one Lua script so that a count is read and moved in one step on the server, whichever
process asks; without a URL (the embedded default) each process counts in its own memory.

- `window`: a fixed window per key (INCR, and the window's expiry set by the first request):
  the public rate limit (registry.http.ratelimit).
- `gcra_wait`: the generic cell rate algorithm, the same arithmetic as the in-process
  `registry.checks.runtime.RateLimiter`, on the server's clock: the bank rate limit. Written
  here (ten lines of Lua) rather than taken from a library: `limits` would bring its own
  storage layer and a timer thread (see RateLimiter) for one script.

When Redis does not answer, or answers with an error (a database index out of range, a wrong
password, READONLY, OOM: any RedisError), both return None and the caller decides: the public
and the bank limits fall back to counting in the process (still limited, by the process count
times the limit), which keeps public search and bank checks up through a Redis restart. A limit
whose overshoot would cost more than an outage (a budget of exact-number lookups) refuses instead.
One log line when the store goes down and one when it is back; while it is down it is tried
again after DOWN_SECONDS, so a dead server costs no timeout per request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
import redis.asyncio

from registry.settings import Settings

logger = logging.getLogger("registry.limits")

# After a failure, requests count in the process for this long before Redis is tried again.
DOWN_SECONDS = 5.0

# KEYS[1] the window's key; ARGV[1] its length in ms. Returns {count, ms until it resets}.
WINDOW = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""

# KEYS[1] the key; ARGV[1] the emission interval in µs (one second / rate). The stored value
# is the theoretical arrival time; a request is admitted while it is at most one second
# ahead of now. Returns 0 when admitted (and counted), else the µs until it would be.
GCRA = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now_us)
if tat < now_us then tat = now_us end
local due = tat + tonumber(ARGV[1])
if due - now_us > 1000000 then return due - now_us - 1000000 end
redis.call('SET', KEYS[1], due, 'PX', math.ceil((due - now_us) / 1000) + 1)
return 0
"""

# Not only ConnectionError and TimeoutError: a store that answers with an error (ResponseError:
# ERR, NOAUTH, READONLY, OOM...) cannot count either, and let every public search and bank
# check fail with a 500.
_OUTAGE = redis.exceptions.RedisError


class SharedLimits:
    """The shared store of one process (None URL: nothing shared; every call returns None)."""

    def __init__(self, url: str | None, *, prefix: str = "registry:", timeout: float = 0.25) -> None:
        self.url = url
        self.prefix = prefix
        options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        self._async = redis.asyncio.Redis.from_url(url, **options) if url else None
        self._sync = redis.Redis.from_url(url, **options) if url else None
        self._retry_at = 0.0
        self._down = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedLimits:
        store = settings.shared_store
        return cls(store.url, prefix=store.prefix, timeout=store.timeout_seconds)

    @property
    def shared(self) -> bool:
        return self.url is not None

    def _available(self) -> bool:
        return self.url is not None and time.monotonic() >= self._retry_at

    def _failed(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + DOWN_SECONDS
        if not self._down:
            self._down = True
            logger.warning(
                "shared limit store unreachable or failing (%s): limits are counted per process "
                "until it answers",
                type(exc).__name__,
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            logger.warning("shared limit store answers again: limits are shared across processes")

    async def window(self, key: str, limit: int, seconds: int) -> tuple[int, int] | None:
        """Count a request in the fixed window of `key`: (requests in it so far, this one
        included; seconds until it resets), or None if the store is not there."""
        if self._async is None or not self._available():
            return None
        try:
            count, ttl = await self._async.eval(WINDOW, 1, self.prefix + key, seconds * 1000)
        except _OUTAGE as exc:
            self._failed(exc)
            return None
        self._answered()
        return int(count), max(1, -(-int(ttl) // 1000))

    def gcra_wait(self, key: str, rate: int) -> float | None:
        """0 when a request of `key` is admitted at `rate` a second (and counted); otherwise
        the seconds until it would be; None if the store is not there. Blocking, with a short
        timeout: it runs where the bank check's other work runs (a loopback round trip)."""
        if self._sync is None or not self._available():
            return None
        try:
            wait = self._sync.eval(GCRA, 1, self.prefix + key, max(1, 1_000_000 // rate))
        except _OUTAGE as exc:
            self._failed(exc)
            return None
        self._answered()
        return int(wait) / 1_000_000

    async def ping(self) -> None:
        """Raises unless the store answers now (for `/readyz`; nothing to do without a URL)."""
        if self._async is not None:
            await self._async.ping()

    async def close(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        if self._sync is not None:
            self._sync.close()
