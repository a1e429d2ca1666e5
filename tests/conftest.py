"""Test harness: the real migrations, a real HTTP server, real signatures.

The database is migrated once per run (SQLite file by default; PostgreSQL when
REGISTRY_TEST_DATABASE_URL is set). A real uvicorn server runs the app in a thread for the
whole session, and tests talk to it over loopback with httpx. Isolation: after each test,
every table is emptied and the log head reset (DELETE, a few milliseconds): a rolled-back
transaction cannot work here, since the server and CLI subprocesses use their own
connections and must see committed data.

The fixtures live here; what they hand out, and every helper tests share, lives in
tests/support/ (no test module imports another).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from registry.settings import Settings
from service.app import create_app
from service.models import Base
from tests.support.harness import CourtHandle, Registry, free_port, serve_app

# Children before parents; the log head is reset rather than emptied.
TABLES_IN_DELETE_ORDER = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "log_head"]


def _sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


@pytest.fixture(scope="session")
def base_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("registry")
    url = os.environ.get("REGISTRY_TEST_DATABASE_URL") or f"sqlite:///{root / 'registry.db'}"
    return {
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_SECRETS_FILE": str(root / "secrets.json"),
        "REGISTRY_SIGNING_KEY_FILE": str(root / "signing-keys.json"),
        "REGISTRY_EXPORT_DIR": str(root / "exports"),
        "REGISTRY_WORKER_HEARTBEAT_FILE": str(root / "worker.heartbeat"),
        "REGISTRY_SCHEDULER": "false",
        "REGISTRY_INGEST_WORKERS": "2",
        "REGISTRY_LOG_LEVEL": "WARNING",
        # The session server is shared by every test; the rate limit has its own servers.
        "REGISTRY_PUBLIC_RATE_LIMIT": "off",
        # The tests' push receivers listen on loopback over plain http: open exactly that.
        "REGISTRY_PUSH_ALLOWED_NETWORKS": "127.0.0.1",
        "REGISTRY_PUSH_ALLOW_HTTP": "true",
        # Likewise the correction budget per address; tests/registry/corrections has its own server.
        "REGISTRY_CORRECTIONS_BUDGET_PER_ADDRESS": "1000000",
        "REGISTRY_PUBLIC_NUMBER_LOOKUP_LIMIT": "off",
    }


@pytest.fixture(scope="session")
def settings(base_env: dict[str, str]) -> Iterator[Settings]:
    saved = {k: os.environ.get(k) for k in base_env}
    os.environ.update(base_env)
    try:
        yield Settings()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[sa.Engine]:
    from alembic import command

    from service.cli import alembic_config

    command.upgrade(alembic_config(settings.database.url), "head")
    # Pre-ping: a test that cuts the database's connections (test_ingest_faults) cuts this
    # pool's idle ones too; the next test must not inherit a dead one.
    sync = sa.create_engine(_sync_url(settings.database.url), pool_pre_ping=True)
    yield sync
    sync.dispose()


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" not in request.fixturenames:
        return
    engine: sa.Engine = request.getfixturevalue("engine")
    with engine.begin() as conn:
        for table in TABLES_IN_DELETE_ORDER:
            conn.execute(sa.text(f"DELETE FROM {table}"))
        if conn.dialect.name == "sqlite":
            # The search FTS5 index is outside the metadata (external content over search_docs).
            conn.execute(sa.text("INSERT INTO search_fts(search_fts) VALUES ('delete-all')"))
        conn.execute(
            sa.text("UPDATE log_head SET last_seq = 0, last_hash = :h WHERE id = 1"), {"h": bytes(32)}
        )


def _answers(url: str) -> str | None:
    """None if a Redis answers at `url`, else why not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        return type(exc).__name__
    return None


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis (or Valkey) server for the shared limits: REGISTRY_TEST_REDIS_URL, or the one
    on 127.0.0.1:6379, or else one started here for the session (`redis-server` or
    `valkey-server`, nothing kept on disk). Skipped, saying so, when none can be had."""
    given = os.environ.get("REGISTRY_TEST_REDIS_URL")
    url = given or "redis://127.0.0.1:6379/0"
    failure = _answers(url)
    if failure is None:
        yield url
        return
    binary = None if given else shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        pytest.skip(
            f"no Redis answers at {url} ({failure}) and no redis-server to start: "
            "install redis-server, or set REGISTRY_TEST_REDIS_URL"
        )
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while _answers(url) is not None:
            assert server.poll() is None and time.monotonic() < deadline, f"{binary} did not start"
            time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="session")
def server_url(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    # The links the server writes (feeds, exports) start with its configured public origin.
    port = free_port()
    public = settings.override(server={"public_base_url": f"http://127.0.0.1:{port}"})
    with serve_app(create_app(public, run_scheduler=False), port) as url:
        yield url


@pytest.fixture
def registry(engine: sa.Engine, server_url: str) -> Registry:
    return Registry(engine, server_url)


@pytest.fixture
def court(registry: Registry) -> CourtHandle:
    return registry.court()


@pytest.fixture
def admin(registry: Registry) -> httpx.Client:
    return registry.http(registry.client("admin"))
