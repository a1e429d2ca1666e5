"""What the bank check keeps per process: the receipt signer, the per-bank rate limiter
(the `limits` library, moving window, in memory), and on SQLite a synchronous engine the
handlers use inline (measured: an aiosqlite round trip costs more than the whole query)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Engine

from registry.checks.receipts import ReceiptSigner
from registry.checks.services import RateLimited
from registry.db import create_sync_engine
from registry.identity.registry_key import RegistrySigner
from registry.settings import Settings


@dataclass
class CheckRuntime:
    receipts: ReceiptSigner
    sync_engine: Engine | None
    limiter: MovingWindowRateLimiter
    rate: RateLimitItemPerSecond

    @classmethod
    def create(cls, settings: Settings, signer: RegistrySigner) -> CheckRuntime:
        engine = create_sync_engine(settings.database_url, writer=True) if settings.is_sqlite else None
        return cls(
            ReceiptSigner(signer),
            engine,
            MovingWindowRateLimiter(MemoryStorage()),
            RateLimitItemPerSecond(settings.check_rate_per_second),
        )

    def throttle(self, client_id: str) -> None:
        """Per bank, per process: the daily quota is the exact, cross-process limit."""
        if not self.limiter.hit(self.rate, client_id):
            reset = self.limiter.get_window_stats(self.rate, client_id).reset_time
            raise RateLimited(
                "rate_limited",
                f"at most {self.rate.amount} check requests a second per bank",
                max(1, math.ceil(reset - time.time())),
            )

    def close(self) -> None:
        if self.sync_engine is not None:
            self.sync_engine.dispose()
