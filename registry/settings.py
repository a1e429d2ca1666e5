"""Typed settings, read from `REGISTRY_*` environment variables.

Nothing here runs at import: `Settings()` is built by the composition root (the app
factory or the CLI) and passed down.
"""

from __future__ import annotations

from pathlib import Path

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

    # ---- feeds, exports and the transparency log (issue 6) ----
    publications_interval_seconds: int = Field(
        default=10, ge=1, description="How often the feeds' reader follows the event log."
    )
    feed_page_size: int = Field(default=50, ge=1, le=500, description="Entries per feed page.")
    export_dir: Path = Field(
        default=Path("var/exports"), description="Where daily signed exports are written."
    )
    export_retention_days: int = Field(default=30, ge=1, description="Exports older than this are pruned.")
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
