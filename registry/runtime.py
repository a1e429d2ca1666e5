"""The long-lived objects one process holds: engines, secrets, the ingest pool, the scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from registry.checks.runtime import CheckRuntime
from registry.db import Database
from registry.identity.crypto import Secrets, SecretsSource
from registry.identity.keystore import check_reloaded, ensure_keys, out_of_step
from registry.identity.registry_key import RegistrySigner, load_registry_signer
from registry.limits import SharedLimits
from registry.listings.ingest import IngestService, worker_count
from registry.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    secrets_source: SecretsSource
    ingest: IngestService
    signer: RegistrySigner
    checks: CheckRuntime
    limits: SharedLimits
    # What plugins' resources open for this process (the search engine, ...), by name.
    extensions: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        # Fail closed: refuse to run without a key the stored data needs (never invent one).
        ensure_keys(settings)
        db = Database(settings.database.url)
        source = SecretsSource(
            settings,
            fits=partial(check_reloaded, db.sync_reader),
            in_step=partial(out_of_step, db.sync_reader),
        )
        ingest = IngestService(
            db,
            source,
            worker_count(settings.listings.ingest_workers),
            niceness=settings.listings.ingest_niceness,
            stall_seconds=settings.listings.ingest_stall_seconds,
        )
        signer = load_registry_signer(settings)
        limits = SharedLimits.from_settings(settings)
        checks = CheckRuntime.create(settings, signer, limits)
        return cls(settings, db, source, ingest, signer, checks, limits)

    @property
    def secrets(self) -> Secrets:
        return self.secrets_source.current()

    async def close(self) -> None:
        self.ingest.close()
        self.checks.close()
        await self.limits.close()
        await self.db.dispose()
