"""Typed settings, read from `REGISTRY_*` environment variables.

Nothing here runs at import: `Settings()` is built by the composition root (the app
factory or the CLI) and passed down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGISTRY_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/registry.db",
        description="SQLAlchemy URL. sqlite:///path (embedded default) or postgresql://user@host/db.",
    )
    secrets_file: Path = Field(
        default=Path("var/secrets.json"),
        description="Where generated data keys live when REGISTRY_DATA_KEYS is not set (created 0600).",
    )
    data_keys: str | None = Field(
        default=None,
        description="AES-256-GCM data keys as 'kid:base64,kid2:base64'. The active one is data_key_id.",
    )
    data_key_id: str | None = Field(default=None, description="Key id new ciphertexts are written under.")
    blind_index_key: str | None = Field(
        default=None, description="Base64 HMAC-SHA256 key for the identifier blind index."
    )
    signing_key_file: Path = Field(
        default=Path("var/signing-keys.json"),
        description="The registry's Ed25519 keys when REGISTRY_SIGNING_KEYS is not set (created 0600).",
    )
    signing_keys: str | None = Field(
        default=None,
        description="The registry's Ed25519 private keys, base64 raw, comma-separated; the first signs.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    scheduler: bool = Field(default=True, description="Run background jobs inside `registry serve`.")
    expiry_interval_seconds: int = Field(default=300, ge=1, description="How often fixed terms are expired.")
    ingest_workers: int = Field(
        default=0, ge=0, description="Processes that verify and prepare listings; 0 = one per core."
    )
    batch_max_items: int = Field(default=10_000, ge=1)
    request_max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    log_level: str = "INFO"

    # ---- agency linkage sync (publishing/sync) ----
    sync_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often push workers look for work."
    )
    sync_batch_size: int = Field(default=200, ge=1, le=1000, description="Log events read per push batch.")
    sync_max_parallel: int = Field(
        default=16, ge=1, description="Subscriptions one worker pass delivers at once."
    )
    sync_timeout_seconds: float = Field(default=10.0, gt=0, description="Per push request.")
    sync_max_attempts: int = Field(
        default=10, ge=1, description="Failed pushes in a row before a subscription is flagged failing."
    )
    sync_backoff_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay; doubles each time."
    )
    sync_backoff_max_seconds: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    sync_lease_seconds: float = Field(
        default=30.0, gt=0, description="How long a worker holds a subscription; a dead worker's runs out."
    )
    notice_deadline_days: int = Field(
        default=3, ge=1, description="Working days an agency has to acknowledge an assistance notice."
    )
    # ---- feeds, exports and the transparency log (issue 6) ----
    # Short: a removal must leave the feeds within seconds, like every other public surface.
    publications_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the feeds' reader follows the event log."
    )
    feed_page_size: int = Field(default=50, ge=1, le=500, description="Entries per feed page.")
    export_dir: Path = Field(
        default=Path("var/exports"), description="Where daily signed exports are written."
    )
    export_retention_days: int = Field(default=30, ge=1, description="Exports older than this are pruned.")
    export_parallel_changes: int = Field(
        default=50_000,
        ge=1,
        description="From this many changes in the day, a second process writes the change file.",
    )
    export_hour: int = Field(
        default=1, ge=0, le=23, description="Hour (China time) the daily export of the previous day runs."
    )
    log_origin: str = Field(
        default="defaulter-registry/translog",
        pattern=r"^\S+$",
        description="The transparency log's origin line in checkpoints.",
    )
    log_interval_seconds: int = Field(
        default=60, ge=1, description="How often events are logged and a checkpoint signed."
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Accept the plain URLs operators write and pick the async driver the service runs on.
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    # ---- bank checks (registry/checks) ----
    check_batch_max_subjects: int = Field(default=1000, ge=1, description="Subjects per POST /v1/checks.")
    check_rate_per_second: int = Field(
        default=50, ge=1, description="Check requests per second per bank, per web process (moving window)."
    )
    check_daily_quota: int = Field(
        default=200_000, ge=1, description="Subjects a bank may check per China calendar day (all processes)."
    )
    check_log_retention_days: int = Field(
        default=183, ge=1, description="Days the query log is kept (183 = six months) before the purge job."
    )
    check_log_purge_interval_seconds: int = Field(default=3600, ge=1)
    watchlist_interval_seconds: int = Field(
        default=10, ge=1, description="How often the watchlist reader follows the event log."
    )
    watchlist_max_subjects: int = Field(default=10_000, ge=1, description="Subjects per watchlist request.")
    # Public web page and rate limits (issue 3): one budget per client address shared by every
    # public endpoint (search API, web page, feeds); "off" disables it.
    public_rate_limit: str = Field(
        default="60/minute",
        pattern=r"^(off|[1-9][0-9]{0,6}/(second|minute|hour|day))$",
        description="Requests per client address to the public endpoints: N/second|minute|hour|day, or off.",
    )

    # Public search (issue 3): the engine behind /v1/public/defaulters and how it follows the log.
    search_backend: Literal["embedded", "meilisearch"] = Field(
        default="embedded", description="embedded (inside the registry database) or meilisearch."
    )
    search_index_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often the indexer applies new events to the search index."
    )
    search_reconcile_interval_seconds: int = Field(
        default=3600, ge=60, description="How often the index is compared with the registry and repaired."
    )
    meilisearch_url: str | None = Field(default=None, description="e.g. http://127.0.0.1:7700")
    meilisearch_api_key: str | None = Field(default=None, description="A key with search and index rights.")
    meilisearch_index: str = Field(
        default="defaulters", pattern=r"^[A-Za-z0-9_-]{1,200}$", description="Meilisearch index name (uid)."
    )
