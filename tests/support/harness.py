"""What the fixtures in tests/conftest.py hand out, and what tests use beside them: the
`Registry` that plays the courts and the operator, a court's handle, a server of one's own,
the environment and path of a `registry` subprocess, and the search indexer as the
scheduler runs it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar

from demo.data import DemoCourt, DemoGenerator, extension_for
from registry.calendar import today_in_china
from registry.clients.services import create_client
from registry.courts.services import add_court, add_key
from registry.identity.signing import public_bytes, sign_envelope
from registry.settings import Settings
from registry.timeutil import utcnow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(app: Litestar, port: int | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread on a free loopback port (or `port`); yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, proxy_headers=False
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def run_search_indexer(engine: sa.Engine) -> int:
    """What the scheduler's search job does: apply every pending event to the embedded index."""
    from registry.eventlog.readers import follow_sync
    from search.embedded import EmbeddedIndex
    from search.indexer import index_follower

    return follow_sync(engine, index_follower(EmbeddedIndex(engine)))


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
    # Resident IDs and credit codes only: tests look debtors up by those (every other type has
    # its own tests, tests/registry/listings/test_identity_types.py; the demo mixes them in).
    generator: DemoGenerator = field(default_factory=lambda: DemoGenerator(seed=42, identity_mix=False))

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
        return _overridden(self.generator.listing(court.demo, self.today), overrides)

    def person_listing(self, court: CourtHandle, **overrides: Any) -> dict[str, Any]:
        while True:
            body = self.listing(court)
            if body["debtor"]["kind"] == "person":  # type: ignore[index]
                return _overridden(body, overrides)

    def envelope(self, court: CourtHandle, body: dict[str, Any], name: str = "listing") -> dict[str, Any]:
        return sign_envelope(name, body, court.private_key, court.key_id)

    def http(self, api_key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def _overridden(body: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`body` with `overrides`; a new listing date moves the decision's date with it (a court
    decides to list on or before the day it lists)."""
    body.update(overrides)
    if "listed_on" in overrides and "decision" not in overrides:
        body["decision"] = body["decision"] | {"decided_on": overrides["listed_on"]}
    if "extension" not in overrides:
        # A term over two years carries its extension (SPC Art. 2), and only such a term does.
        body.pop("extension", None)
        extension = extension_for(body)
        if extension is not None:
            body["extension"] = extension
    return body


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment a `registry` subprocess needs to reach the test database."""
    env = dict(os.environ)
    env.update({
        "REGISTRY_DATABASE_URL": os.environ["REGISTRY_DATABASE_URL"],
        "REGISTRY_SECRETS_FILE": str(settings.keys.secrets_file),
        "REGISTRY_SCHEDULER": "false",
    })  # fmt: skip
    return env


def run_registry(
    settings: Settings, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """`registry ARGS` as an operator runs it, on the test database with `env` on top: its
    exit status and output, never raising for a non-zero one."""
    return subprocess.run(
        [registry_bin(), *args],
        env=cli_env(settings) | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def registry_bin() -> str:
    return str(
        Path(os.environ.get("VIRTUAL_ENV", Path(__file__).resolve().parents[2] / ".venv"))
        / "bin"
        / "registry"
    )
