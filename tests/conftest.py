"""Test harness: the real migrations, a real HTTP server, real signatures.

The database is migrated once per run (SQLite file by default; PostgreSQL when
REGISTRY_TEST_DATABASE_URL is set). A real uvicorn server runs the app in a thread for the
whole session, and tests talk to it over loopback with httpx. Isolation: after each test,
every table is emptied and the log head reset (DELETE, a few milliseconds): a rolled-back
transaction cannot work here, since the server and CLI subprocesses use their own
connections and must see committed data.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from demo.data import DemoCourt, DemoGenerator
from registry.calendar import today_in_china
from registry.clients.services import create_client
from registry.courts.services import add_court, add_key
from registry.identity.signing import public_bytes, sign_envelope
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from service.models import Base

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
        "REGISTRY_SCHEDULER": "false",
        "REGISTRY_INGEST_WORKERS": "2",
        "REGISTRY_LOG_LEVEL": "WARNING",
        # The session server is shared by every test; the rate limit has its own servers.
        "REGISTRY_PUBLIC_RATE_LIMIT": "off",
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
    sync = sa.create_engine(_sync_url(settings.database.url))
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


def run_search_indexer(engine: sa.Engine) -> int:
    """What the scheduler's search job does: apply every pending event to the embedded index."""
    from registry.eventlog.readers import follow_sync
    from search.embedded import EmbeddedIndex
    from search.indexer import index_follower

    return follow_sync(engine, index_follower(EmbeddedIndex(engine)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def server_url(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    port = _free_port()
    config = uvicorn.Config(create_app(settings, run_scheduler=False), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class CourtHandle:
    code: str
    name: str
    province_code: str
    key_id: str
    private_key: Ed25519PrivateKey
    api_key: str

    @property
    def demo(self) -> DemoCourt:
        return DemoCourt(self.code, self.name, self.province_code)


@dataclass
class Registry:
    """Plays the courts and the operator: sets up courts, keys and clients; signs envelopes."""

    engine: sa.Engine
    url: str
    generator: DemoGenerator = field(default_factory=lambda: DemoGenerator(seed=42))

    @property
    def today(self) -> date:
        return today_in_china()

    def court(
        self, code: str = "京0105", name: str = "北京市朝阳区人民法院", province: str = "11"
    ) -> CourtHandle:
        private = Ed25519PrivateKey.generate()
        now = utcnow()
        with self.engine.begin() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM courts WHERE code = :c"), {"c": code}).first()
            if exists is None:
                add_court(conn, code, name, province, actor="test", now=now)
            key_id = add_key(conn, code, public_bytes(private), valid_from=now - timedelta(minutes=1),
                             valid_until=None, actor="test", now=now)  # fmt: skip
            _, api_key = create_client(conn, f"{code} clerk", "court", code, actor="test", now=now)
        return CourtHandle(code, name, province, key_id, private, api_key)

    def client(self, role: str) -> str:
        with self.engine.begin() as conn:
            _, api_key = create_client(conn, f"{role} client", role, None, actor="test", now=utcnow())
        return api_key

    def listing(self, court: CourtHandle, **overrides: Any) -> dict[str, Any]:
        body = self.generator.listing(court.demo, self.today)
        body.update(overrides)
        return body

    def person_listing(self, court: CourtHandle, **overrides: Any) -> dict[str, Any]:
        while True:
            body = self.listing(court)
            if body["debtor"]["kind"] == "person":  # type: ignore[index]
                body.update(overrides)
                return body

    def envelope(self, court: CourtHandle, body: dict[str, Any], name: str = "listing") -> dict[str, Any]:
        return sign_envelope(name, body, court.private_key, court.key_id)

    def http(self, api_key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture
def registry(engine: sa.Engine, server_url: str) -> Registry:
    return Registry(engine, server_url)


@pytest.fixture
def court(registry: Registry) -> CourtHandle:
    return registry.court()


@pytest.fixture
def admin(registry: Registry) -> httpx.Client:
    return registry.http(registry.client("admin"))


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a `registry` subprocess needs to reach the test database."""
    env = dict(os.environ)
    env.update({
        "REGISTRY_DATABASE_URL": os.environ["REGISTRY_DATABASE_URL"],
        "REGISTRY_SECRETS_FILE": str(settings.keys.secrets_file),
        "REGISTRY_SCHEDULER": "false",
    })  # fmt: skip
    return env


def registry_bin() -> str:
    return str(
        Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[1] / ".venv"))
        / "bin"
        / "registry"
    )
