"""Typed settings, read from `REGISTRY_*` environment variables, one class per concern.

Nothing here runs at import: `Settings()` is built by the composition root (the app
factory or the CLI) and passed down; each concern reads its own variables then. The settings
reference in `docs/settings.md` is generated from these classes (`registry settings`).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import SplitResult, parse_qsl, urlsplit

from pydantic import AliasChoices, BaseModel, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from registry.endpoints import parse_allowed

# The longest interval, timeout or lease a setting may hold: anything longer is a typo, and
# inf or 1e300 seconds overflowed the scheduler and asyncio when the job or request began.
A_DAY = 86_400
# The longest a retention in days may be: a billion days overflowed the date arithmetic of the
# purge jobs and the query-log export when they ran.
A_DECADE = 3_653


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True, allow_inf_nan=False)


def _bad_port(parts: SplitResult) -> bool:
    """Whether the URL names a port that is not 1-65535 in ASCII digits (urlsplit reads ٣ too).
    A libpq multi-host list (`h1:5432,h2:5432`) is left to the drivers."""
    if "," in parts.netloc:
        return False
    try:
        port = parts.port
    except ValueError:
        return True
    if port is None:
        return False
    written = parts.netloc.rpartition(":")[2]
    return not (written.isascii() and 1 <= port <= 65535)


def _url_of(value: str, schemes: set[str], example: str) -> str:
    """`value` if it is a URL of one of `schemes` naming a server or socket; the error never
    repeats the value, which may carry a password."""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.hostname or parts.path.strip("/")):
        *others, last = sorted(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"expected a URL starting {', '.join(others)} or {last}, e.g. {example}")
    return value


# The libpq options a PostgreSQL URL's query may carry: the ones both engines honour. The
# synchronous engine (psycopg) hands the query to libpq as written; the async engine's driver
# (asyncpg) takes other names, and `registry.db.asyncpg_arguments` translates. Any other option
# is refused when the settings are read: asyncpg raised TypeError on every connection.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SSL_FILES = ("sslrootcert", "sslcert", "sslkey", "sslcrl")
POSTGRES_OPTIONS = ("sslmode", *SSL_FILES, "connect_timeout", "application_name", "host", "port")


def postgres_options(query: str) -> dict[str, str]:
    """The options of a PostgreSQL URL's query string, each checked; ValueError (one line,
    naming options, never a value: the URL may carry a password) for any the service cannot
    honour on both engines."""
    pairs = parse_qsl(query, keep_blank_values=True)
    unknown = sorted({name for name, _ in pairs if name not in POSTGRES_OPTIONS})
    if unknown:
        # A name that is not a plain word may be a mistyped value: not repeated.
        named = ", ".join(n if re.fullmatch(r"[A-Za-z_]{1,40}", n) else "(unnamed)" for n in unknown)
        raise ValueError(
            f"query option {named} is not supported; a PostgreSQL URL may carry {', '.join(POSTGRES_OPTIONS)}"
        )
    options = dict(pairs)
    if len(options) < len(pairs):
        twice = sorted({name for name, _ in pairs if [n for n, _ in pairs].count(name) > 1})
        raise ValueError(f"query option {', '.join(twice)} given more than once")
    if options.get("sslmode", "prefer") not in SSL_MODES:
        raise ValueError(f"sslmode must be one of {', '.join(SSL_MODES)}")
    timeout = options.get("connect_timeout", "0")
    if not re.fullmatch(r"[0-9]{1,6}", timeout) or int(timeout) > A_DAY:
        raise ValueError(f"connect_timeout must be whole seconds from 0 (no limit) to {A_DAY}")
    for name in SSL_FILES:
        if name in options and not (os.path.isfile(options[name]) and os.access(options[name], os.R_OK)):
            raise ValueError(f"{name} names no readable file")
    return options


class DatabaseSettings(BaseSettings):
    """Where the registry keeps its data."""

    model_config = _config("REGISTRY_DATABASE_")

    url: str = Field(
        default="sqlite:///var/registry.db",
        description="SQLAlchemy URL: sqlite:///path (embedded default) or postgresql://user@host/db "
        "(postgres://, postgresql+psycopg:// and postgresql+asyncpg:// too). A PostgreSQL URL's query "
        "may set sslmode, sslrootcert, sslcert, sslkey, sslcrl, connect_timeout, application_name, "
        "host and port, as for libpq; any other option is refused.",
    )

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Accept the plain URLs operators write and pick the async driver the service runs on;
        # refuse any other (another database, a driver not installed, sqlite:// with no path).
        for prefix in ("sqlite:///", "sqlite+aiosqlite:///"):
            if value.startswith(prefix) and value.removeprefix(prefix):
                return "sqlite+aiosqlite:///" + value.removeprefix(prefix)
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+asyncpg://"):
            if value.startswith(prefix):
                # Kept as written (libpq reads it); checked here, translated by registry.db.
                if _bad_port(urlsplit(value)):
                    raise ValueError("the URL's port is not a number from 1 to 65535")
                postgres_options(urlsplit(value).query)
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        raise ValueError("expected sqlite:///path/to/file.db or postgresql://user@host:5432/database")

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class KeySettings(BaseSettings):
    """Data encryption keys, the blind-index key and the registry's signing keys."""

    model_config = _config("REGISTRY_")

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
        default=None,
        description=(
            "Base64 HMAC-SHA256 key for the identifier blind index; 'new,old' while rotating it "
            "(written under the first, looked up under both: docs/operations.md#keys)."
        ),
    )
    signing_key_file: Path = Field(
        default=Path("var/signing-keys.json"),
        description="The registry's Ed25519 keys when REGISTRY_SIGNING_KEYS is not set (created 0600).",
    )
    signing_keys: str | None = Field(
        default=None,
        description="The registry's Ed25519 private keys, base64 raw, comma-separated; the first signs.",
    )


class ServerSettings(BaseSettings):
    """The HTTP server and what runs in its process."""

    model_config = _config("REGISTRY_")

    host: str = Field(default="127.0.0.1", description="Address `registry serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `registry serve` listens on.")
    scheduler: bool = Field(default=True, description="Run background jobs inside `registry serve`.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Python logging level name: DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    worker_heartbeat_file: Path = Field(
        default=Path("var/worker.heartbeat"),
        description="Touched by `registry worker` every few seconds; `registry worker --check` reads it.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="text, or json: one JSON object a line, with the request id."
    )
    request_max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest body of a listing batch (POST /v1/listings/batch: 10,000 envelopes); "
        "every other route has its own, smaller cap (operations.md).",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For "
        "and X-Forwarded-Proto are believed; empty (the default): none, the client is the TCP peer.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="The public https origin (e.g. https://registry.example): the base of every URL "
        "the service writes (feeds, exports, links); unset: http://REGISTRY_HOST:REGISTRY_PORT. "
        "Never taken from the Host header.",
    )
    # One budget per client address shared by every public endpoint (search, web page, feeds).
    public_rate_limit: str = Field(
        default="60/minute",
        pattern=r"^(off|[1-9][0-9]{0,6}/(second|minute|hour|day))$",
        description="Requests per client address to the public endpoints: N/second|minute|hour|day, "
        "or off; across processes with REGISTRY_REDIS_URL.",
    )
    # Exact-number lookups (a full ID number or code) are confirmations of a guess: a budget of
    # their own, within the public one, so that no mask can be walked through by asking.
    public_number_lookup_limit: str = Field(
        default="20/hour",
        pattern=r"^(off|[1-9][0-9]{0,6}/(second|minute|hour|day))$",
        description="Exact-number public searches (API and web page) per client address: "
        "N/second|minute|hour|day, or off; shared across processes with REGISTRY_REDIS_URL, "
        "refused while that store does not answer.",
    )

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                # Not ipaddress's message: it repeats the value, which settings errors never do.
                raise ValueError("comma-separated addresses or networks, e.g. 10.0.0.0/8,::1") from None
        return value

    @field_validator("public_base_url")
    @classmethod
    def _origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or parts.query
            or parts.fragment
            or parts.username is not None
            or _bad_port(parts)
        ):
            raise ValueError(
                "an http(s) origin, e.g. https://registry.example (a path prefix is allowed; no user or "
                "password; a port from 1 to 65535)"
            )
        return value.rstrip("/")

    def trusted_proxies(self) -> list[str]:
        return [part.strip() for part in self.forwarded_allow_ips.split(",") if part.strip()]

    def base_url(self) -> str:
        """Where the service is reached: REGISTRY_PUBLIC_BASE_URL, else its own address."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return self.public_base_url or f"http://{host}:{self.port}"


class ListingSettings(BaseSettings):
    """Ingest of signed listings and the expiry of fixed terms."""

    model_config = _config("REGISTRY_")

    expiry_interval_seconds: int = Field(
        default=300, ge=1, le=A_DAY, description="How often fixed terms are expired."
    )
    ingest_workers: int = Field(
        default=0, ge=0, le=256, description="Processes that verify and prepare listings; 0 = one per core."
    )
    ingest_niceness: int = Field(
        default=10,
        ge=0,
        le=19,
        description=(
            "How much lower the ingest processes' CPU priority is (nice): removals, searches and"
            " checks on the same cores go first; 0 = the same priority."
        ),
    )
    ingest_stall_seconds: float = Field(
        default=120.0,
        gt=0,
        le=A_DAY,
        description=(
            "How long the ingest processes may finish no chunk while chunks wait before they are"
            " killed and replaced, and the chunks tried again (a stopped or hung worker)."
        ),
    )
    batch_max_items: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        description="Envelopes per POST /v1/listings/batch (at most 100,000; the body cap holds too).",
    )


class CheckSettings(BaseSettings):
    """Bank checks, their query log and watchlists."""

    model_config = _config("REGISTRY_CHECK_")

    batch_max_subjects: int = Field(
        default=1000, ge=1, le=1000, description="Subjects per POST /v1/checks (at most 1,000: the body cap)."
    )
    rate_per_second: int = Field(
        default=50,
        ge=1,
        description="Check requests per second per bank (GCRA), across processes with REGISTRY_REDIS_URL.",
    )
    daily_quota: int = Field(
        default=200_000, ge=1, description="Subjects a bank may check per China calendar day (all processes)."
    )
    fast_path: bool = Field(
        default=True,
        description="Answer POST /v1/checks in a raw ASGI route ahead of the framework (same answers,"
        " less work a check); off: the framework's route answers every check.",
    )
    log_retention_days: int = Field(
        default=183,
        ge=1,
        le=A_DECADE,
        description="Days the query log is kept (183 = six months) before the purge job.",
    )
    log_purge_interval_seconds: int = Field(
        default=3600, ge=1, le=A_DAY, description="How often the query log is purged of rows past retention."
    )
    watchlist_interval_seconds: int = Field(
        default=10,
        ge=1,
        le=A_DAY,
        validation_alias="REGISTRY_WATCHLIST_INTERVAL_SECONDS",
        description="How often the watchlist reader follows the event log.",
    )
    watchlist_max_subjects: int = Field(
        default=10_000,
        ge=1,
        le=10_000,
        validation_alias="REGISTRY_WATCHLIST_MAX_SUBJECTS",
        description="Subjects per watchlist request.",
    )


class SyncSettings(BaseSettings):
    """Agency linkage: push delivery and assistance notices."""

    model_config = _config("REGISTRY_SYNC_")

    interval_seconds: float = Field(
        default=1.0, gt=0, le=A_DAY, description="How often push workers look for work."
    )
    # 500: a backlog (a new agency, a replay) goes out in half the transactions and POSTs of
    # 200 for the same bytes; a removal alone is still a batch of one (docs/benchmarks.md).
    batch_size: int = Field(default=500, ge=1, le=1000, description="Log events read per push batch.")
    max_parallel: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Subscriptions (and, apart, banks' watchlists) one process delivers at once"
        " (at most 256).",
    )
    timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=A_DAY,
        description="Total deadline of one push request, connection to last byte read (at most half "
        "the lease is used).",
    )
    max_attempts: int = Field(
        default=10, ge=1, description="Failed pushes in a row before a subscription is flagged failing."
    )
    backoff_base_seconds: float = Field(
        default=1.0, gt=0, le=A_DAY, description="First retry delay; doubles each time."
    )
    backoff_max_seconds: float = Field(default=300.0, gt=0, le=A_DAY, description="Longest retry delay.")
    lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=A_DAY,
        description="How long a worker holds a subscription; a dead worker's runs out.",
    )
    notice_deadline_days: int = Field(
        default=3,
        ge=1,
        le=60,
        validation_alias="REGISTRY_NOTICE_DEADLINE_DAYS",
        description="Working days an agency has to acknowledge an assistance notice.",
    )


class PushSettings(BaseSettings):
    """Where the registry may send: agency push subscriptions and bank watchlist endpoints."""

    model_config = _config("REGISTRY_PUSH_")

    allowed_networks: str = Field(
        default="",
        description="Comma-separated networks (10.20.0.0/16, 127.0.0.1) or host names (agency.internal) "
        "pushes may reach beside public addresses; empty: public addresses only.",
    )
    allow_http: bool = Field(
        default=False, description="Accept plain http:// endpoints, and then only to the allowed networks."
    )
    response_max_bytes: int = Field(
        default=64 * 1024,
        ge=0,
        le=16 * 1024 * 1024,
        description="Most of a push answer's body read (never stored); the rest is not read.",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_allowed(value)
        return value


class FeedSettings(BaseSettings):
    """Media feeds and the delta API."""

    model_config = _config("REGISTRY_")

    # Short: a removal must leave the feeds within seconds, like every other public surface.
    publications_interval_seconds: float = Field(
        default=1.0, gt=0, le=A_DAY, description="How often the feeds' reader follows the event log."
    )
    feed_page_size: int = Field(default=50, ge=1, le=500, description="Entries per feed page.")


class ExportSettings(BaseSettings):
    """Signed daily exports."""

    model_config = _config("REGISTRY_EXPORT_")

    dir: Path = Field(default=Path("var/exports"), description="Where daily signed exports are written.")
    retention_days: int = Field(
        default=30, ge=1, le=A_DECADE, description="Exports older than this are pruned."
    )
    parallel_changes: int = Field(
        default=50_000,
        ge=1,
        description="From this many changes in the day, a second process writes the change file.",
    )
    hour: int = Field(
        default=1, ge=0, le=23, description="Hour (China time) the daily export of the previous day runs."
    )


class TranslogSettings(BaseSettings):
    """The transparency log."""

    model_config = _config("REGISTRY_LOG_")

    origin: str = Field(
        default="defaulter-registry/translog",
        pattern=r"^\S+$",
        description="The transparency log's origin line in checkpoints.",
    )
    interval_seconds: int = Field(
        default=60, ge=1, le=A_DAY, description="How often events are logged and a checkpoint signed."
    )


class SearchSettings(BaseSettings):
    """The engine behind the public list and how it follows the log."""

    model_config = _config("REGISTRY_SEARCH_")

    backend: Literal["embedded", "meilisearch"] = Field(
        default="embedded", description="embedded (inside the registry database) or meilisearch."
    )
    index_interval_seconds: float = Field(
        default=0.5, gt=0, le=60, description="How often the indexer applies new events to the search index."
    )
    reconcile_interval_seconds: int = Field(
        default=3600,
        ge=60,
        le=A_DAY,
        description="How often the index is compared with the registry and repaired.",
    )
    exact_count_limit: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description=(
            "Embedded engine: matches counted exactly; past it a search answers `total_exact: false`, "
            "the total as a lower bound and no facets (counting reads a row per match)."
        ),
    )
    recent_segment: int = Field(
        default=1_000_000,
        ge=1,
        description=(
            "Embedded engine on PostgreSQL: about how many of the newest documents get text indexes of "
            "their own, counted first (built once the list holds twice as many; docs/search.md)."
        ),
    )


class MeilisearchSettings(BaseSettings):
    """The production search engine (REGISTRY_SEARCH_BACKEND=meilisearch)."""

    model_config = _config("REGISTRY_MEILISEARCH_")

    url: str | None = Field(
        default=None,
        description="The server, e.g. http://127.0.0.1:7700 (http:// or https://); required with "
        "REGISTRY_SEARCH_BACKEND=meilisearch.",
    )
    api_key: str | None = Field(
        default=None,
        description="A key with index rights (documents, settings, indexes, tasks): worker and CLI.",
    )
    search_key: str | None = Field(
        default=None,
        description="A key with search rights only, for the public search (required with api_key).",
    )
    timeout_seconds: int = Field(default=10, ge=1, le=A_DAY, description="Per request to Meilisearch.")
    index: str = Field(
        default="defaulters", pattern=r"^[A-Za-z0-9_-]{1,200}$", description="Meilisearch index name (uid)."
    )

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        # Without a scheme the client took it for a path: search said "retry shortly" for ever.
        return None if value is None else _url_of(value, {"http", "https"}, "http://127.0.0.1:7700")


class SharedStoreSettings(BaseSettings):
    """The store the web processes share their rate limits through (Redis or Valkey)."""

    model_config = _config("REGISTRY_REDIS_")

    url: str | None = Field(
        default=None,
        description="redis://host:6379/0 (or rediss://, unix://) to share the public and bank rate limits "
        "across processes; unset: each process counts its own (the embedded default).",
    )
    prefix: str = Field(
        default="registry:", pattern=r"^\S{1,64}$", description="Prefix of every key this service writes."
    )
    timeout_seconds: float = Field(
        default=0.25, gt=0, le=10, description="Per call to the store; past it, the process counts alone."
    )

    @field_validator("url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        # The schemes redis-py's from_url takes; anything else raised in every command.
        return None if value is None else _url_of(value, {"redis", "rediss", "unix"}, "redis://host:6379/0")


class CorrectionSettings(BaseSettings):
    """Correction and review (SPC Art. 9, 11, 12) and removal certificates."""

    model_config = _config("REGISTRY_CORRECTIONS_")

    max_attachments: int = Field(default=5, ge=0, le=20, description="Files one application may carry.")
    max_attachment_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Largest attachment (PDF, JPEG or PNG), in bytes."
    )
    budget_per_address: int = Field(
        default=10,
        ge=1,
        description="Applications and certificate requests per client address per day (IPv6 per /64).",
    )
    follow_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=A_DAY,
        description="How often upheld corrections are matched to later amendments.",
    )


class StatisticsSettings(BaseSettings):
    """Statistics and the oversight dashboard (docs/statistics.md)."""

    model_config = _config("REGISTRY_STATISTICS_")

    interval_seconds: float = Field(
        default=5.0, gt=0, le=A_DAY, description="How often the statistics reader follows the event log."
    )


class Settings(BaseModel):
    """Every concern's settings; each reads its own `REGISTRY_*` variables when built."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    listings: ListingSettings = Field(default_factory=ListingSettings)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    exports: ExportSettings = Field(default_factory=ExportSettings)
    translog: TranslogSettings = Field(default_factory=TranslogSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    meilisearch: MeilisearchSettings = Field(default_factory=MeilisearchSettings)
    shared_store: SharedStoreSettings = Field(default_factory=SharedStoreSettings)
    corrections: CorrectionSettings = Field(default_factory=CorrectionSettings)
    statistics: StatisticsSettings = Field(default_factory=StatisticsSettings)

    def override(self, **concerns: dict[str, Any]) -> Self:
        """A copy with some fields of some concerns changed (validated), e.g.
        `settings.override(checks={"rate_per_second": 2})`."""
        changed = {
            name: getattr(self, name).model_validate(getattr(self, name).model_dump() | values)
            for name, values in concerns.items()
        }
        return self.model_copy(update=changed)


class SettingsError(ValueError):
    """`REGISTRY_*` variables that hold no valid setting, one line each, naming the variable
    (never its value, which may be a secret)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def load_settings() -> Settings:
    """`Settings()` from the environment, every bad variable named in one `SettingsError`:
    built whole, the first bad concern hid the others, and errors named fields, not variables."""
    concerns: dict[str, BaseSettings] = {}
    lines: list[str] = []
    for name, info in Settings.model_fields.items():
        concern = _concern(info.annotation)
        try:
            concerns[name] = concern()
        except ValidationError as exc:
            lines += [f"{_variable(concern, error['loc'])}: {_reason(error)}" for error in exc.errors()]
    lines += [
        f"{name}: not a setting of the registry (misspelt? `registry settings` lists them)"
        for name in unknown_variables(os.environ)
    ]
    if lines:
        raise SettingsError(lines)
    settings = Settings.model_validate(concerns)
    # Across concerns. Refused by the search adapter too, but only once serving had begun, in a
    # traceback: here before anything starts.
    meili = settings.meilisearch
    if settings.search.backend == "meilisearch" and meili.url is None:
        lines.append("REGISTRY_MEILISEARCH_URL: required with REGISTRY_SEARCH_BACKEND=meilisearch")
    if settings.search.backend == "meilisearch" and meili.api_key and not meili.search_key:
        lines.append("REGISTRY_MEILISEARCH_SEARCH_KEY: required with REGISTRY_MEILISEARCH_API_KEY")
    if lines:
        raise SettingsError(lines)
    return settings


# Variables of the registry's own tests and benches, read by them and not by the service.
NOT_SETTINGS_PREFIXES = ("REGISTRY_TEST_", "REGISTRY_BENCH_")


def known_variables() -> frozenset[str]:
    """Every environment variable a setting is read from."""
    names: set[str] = set()
    for info in Settings.model_fields.values():
        concern = _concern(info.annotation)
        prefix = str(concern.model_config.get("env_prefix", ""))
        for field_name, field_info in concern.model_fields.items():
            alias = field_info.validation_alias
            if isinstance(alias, str):
                names.add(alias.upper())
            elif isinstance(alias, AliasChoices):
                names.update(str(choice).upper() for choice in alias.choices if isinstance(choice, str))
            else:
                names.add(f"{prefix}{field_name}".upper())
    return frozenset(names)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`REGISTRY_*` variables no setting reads: a misspelt REGISTRY_DATABSE_URL was ignored and
    the service started on a new empty SQLite database, generating new keys."""
    known = known_variables()
    return sorted(
        name
        for name in environ
        if name.startswith("REGISTRY_") and name not in known and not name.startswith(NOT_SETTINGS_PREFIXES)
    )


def _concern(annotation: Any) -> type[BaseSettings]:
    assert isinstance(annotation, type) and issubclass(annotation, BaseSettings)
    return annotation


def _variable(concern: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    field = str(loc[0])
    # A field read under an alias is reported under the alias, already the variable's name.
    return environment_name(concern, field) if field in concern.model_fields else field


def _reason(error: ErrorDetails) -> str:
    # A validator's own message, without pydantic's "Value error, " before it.
    return str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]


def environment_name(concern: type[BaseSettings], field: str) -> str:
    """The variable one field is read from."""
    info = concern.model_fields[field]
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return f"{concern.model_config.get('env_prefix', '')}{field}".upper()


def reference_markdown() -> str:
    """The settings reference (docs/settings.md), from the classes above: one table per concern."""
    lines = [
        "# Settings",
        "",
        "Generated by `registry settings` from `registry/settings.py`; do not edit by hand.",
        "Every setting is an environment variable; the service reads them when it starts, and a",
        "command given a bad one stops at once, naming it. Durations in seconds are at most 86400 (a day).",
    ]
    for name, info in Settings.model_fields.items():
        concern = _concern(info.annotation)
        lines += ["", f"## {name}: {concern.__doc__}", "", "| variable | default | range | meaning |"]
        lines.append("| --- | --- | --- | --- |")
        for field, spec in concern.model_fields.items():
            default = "(none)" if spec.default is None else f"`{spec.default}`"
            name_ = environment_name(concern, field)
            lines.append(f"| `{name_}` | {default} | {_bounds(spec.metadata)} | {spec.description} |")
    return "\n".join(lines) + "\n"


_BOUND_SIGNS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def _bounds(metadata: list[Any]) -> str:
    """A number's bounds as its field declares them (`≥ 1, ≤ 60`): what a value outside is
    refused for, in the reference rather than found by trying."""
    found = {
        sign: getattr(item, attr)
        for item in metadata
        for attr, sign in _BOUND_SIGNS
        if getattr(item, attr, None) is not None
    }
    return ", ".join(
        f"{sign} {value:,}" if isinstance(value, int) else f"{sign} {value}" for sign, value in found.items()
    )
