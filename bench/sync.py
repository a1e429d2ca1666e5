"""`registry bench sync`: fan-out to three local push receivers, and removal-to-acknowledgement
latency, with `registry worker` and `registry serve` as real processes.

1. A scratch database gets N signed demo listings (the real ingest path).
2. Three receivers (standard library HTTP servers in this process) get a `credit_reference`
   push subscription each from the start of the log; the workers deliver the whole backlog
   as deployed: on PostgreSQL one `registry worker --jobs deliveries` and one with every
   other job (deploy/), on SQLite one `registry worker` with every job (`--workers-split`
   chooses): log events/s is listing events / time until all three hold them all (deliveries/s
   three times that).
3. With the workers still running, removals are posted one by one to `registry serve` as
   the listing court would sign them; the latency of each is from just before the POST to
   when the last of the three receivers has it (the receiver answers 200 right after).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, func, or_, select

from bench.common import (
    _env,
    _free_port,
    _registry,
    drop_postgres_databases,
    fresh_postgres_database,
    latency_summary,
    load_average,
    timed_figure,
)
from demo.runner import load_demo
from demo.seed import load_signers
from publishing.sync.services import create_subscription
from registry.calendar import today_in_china
from registry.clients.services import create_client
from registry.db import create_sync_engine
from registry.endpoints import PushPolicy
from registry.eventlog.types import EventType
from registry.identity.signing import sign_envelope
from registry.listings.models import Listing
from registry.runtime import Services
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from registry.timeutil import utcnow


@dataclass
class _Sink:
    """Counts distinct events (by idempotency key) and notes when each removal arrived."""

    url: str = ""
    keys: set[str] = field(default_factory=set)
    removed_at: dict[str, float] = field(default_factory=dict)
    first_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def _sink() -> Iterator[_Sink]:
    sink = _Sink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real agency endpoint would

        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            now = time.perf_counter()
            events = json.loads(body)["events"]
            with sink.lock:
                sink.first_at = sink.first_at or now
                for event in events:
                    sink.keys.add(event["idempotency_key"])
                    if event["type"] == EventType.LISTING_REMOVED:
                        sink.removed_at.setdefault(event["listing_id"], now)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench: timed out waiting for {what}")
        time.sleep(0.01)


async def _setup(settings: Settings, count: int, urls: list[str]) -> tuple[int, str]:
    """Listings, an agency with one subscription per receiver, an admin key; returns the
    number of listing events and the admin key."""
    services = Services.create(settings)
    try:
        await load_demo(services, count, seed=3)
        now = utcnow()
        async with services.db.writer.begin() as conn:
            agency, _ = await conn.run_sync(
                lambda c: create_client(c, "bench agency", "agency", None, actor="bench", now=now)
            )
            _, admin_key = await conn.run_sync(
                lambda c: create_client(c, "bench admin", "admin", None, actor="bench", now=now)
            )
            for url in urls:
                await conn.run_sync(_subscribe, agency, url, now)
            listings = (await conn.execute(select(func.count()).select_from(Listing))).scalar_one()
        return int(listings), admin_key
    finally:
        await services.close()


def _subscribe(conn: Connection, agency: str, url: str, now: datetime) -> dict[str, Any]:
    return create_subscription(
        conn, client_id=agency, profile="credit_reference", mode="push", endpoint_url=url, from_seq=0,
        actor="bench", now=now, policy=PushPolicy(networks=(ip_network("127.0.0.1"),), allow_http=True),
    )  # fmt: skip


def run_sync_bench(
    *, count: int, removals: int, database_url: str | None = None, split: bool | None = None
) -> dict[str, Any]:
    """`split`: the deliveries in a worker of their own (default: on PostgreSQL only; SQLite's
    one writer gains nothing from a second writing process, docs/benchmarks.md)."""
    split = database_url is not None if split is None else split
    shape = SPLIT_WORKERS if split else ONE_WORKER
    logging.getLogger("httpx").setLevel(logging.WARNING)
    scratch_databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-sync-bench-") as scratch:
        root = Path(scratch)
        secrets_file = root / "secrets.json"
        if database_url is None:
            url = f"sqlite:///{root / 'sync.db'}"
        else:
            url = fresh_postgres_database(database_url, "sync")
            scratch_databases.append(url.rsplit("/", 1)[1])
        env = _env(url, secrets_file, 0) | {
            "REGISTRY_SIGNING_KEY_FILE": str(root / "signing-keys.json"),
            # The receivers are on this machine: open loopback to pushes, as a private deployment would.
            "REGISTRY_PUSH_ALLOWED_NETWORKS": "127.0.0.1",
            "REGISTRY_PUSH_ALLOW_HTTP": "true",
        }
        _registry("db", "upgrade", env=env)
        settings = Settings(
            database=DatabaseSettings(url=url),
            keys=KeySettings(secrets_file=secrets_file, signing_key_file=root / "signing-keys.json"),
            server=ServerSettings(scheduler=False),
        )
        with _sink() as a, _sink() as b, _sink() as c:
            sinks = [a, b, c]
            started = time.perf_counter()
            events, admin_key = asyncio.run(_setup(settings, count, [s.url for s in sinks]))
            loaded = time.perf_counter() - started
            workers = {
                name: subprocess.Popen(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "service", "worker", *options],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name, options in shape.items()
            }
            server: subprocess.Popen[bytes] | None = None
            try:
                fan_out_load = load_average()
                _wait(lambda: all(len(s.keys) >= events for s in sinks), 3600, "the fan-out")
                # From the first push received, so that the worker's start-up is not counted.
                fan_out_seconds = time.perf_counter() - min(s.first_at or 0.0 for s in sinks)
                worker_cpu = {name: _process_cpu_seconds(process.pid) for name, process in workers.items()}
                port = _free_port()
                server = subprocess.Popen(  # noqa: S603 - our own CLI
                    [sys.executable, "-m", "service", "serve", "--port", str(port), "--no-scheduler"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                # Not the ended fixed terms: the worker's expiry job may remove them any moment.
                today = today_in_china()
                engine = create_sync_engine(url, writer=False)
                with engine.connect() as conn:
                    active = [(r.id, r.court_code) for r in conn.execute(
                        select(Listing.id, Listing.court_code).where(
                            Listing.status == "active",
                            or_(Listing.expires_on.is_(None), Listing.expires_on > today)))]  # fmt: skip
                engine.dispose()
                latencies = _removals(port, admin_key, active, removals, sinks, secrets_file)
            finally:
                for process in (server, *workers.values()):
                    if process is not None:
                        process.terminate()
                        process.wait(timeout=30)
    if database_url is not None:
        drop_postgres_databases(database_url, scratch_databases)
    return {
        "benchmark": "sync",
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "receivers": len(sinks),
        "profile": "credit_reference",
        "load_seconds": round(loaded, 2),
        "deployment": " + ".join(f"registry worker {' '.join(options)}".strip() for options in shape.values())
        + " + registry serve --no-scheduler (web), one database",
        "fan_out": timed_figure(
            {
                "log_events": events,
                "receivers": len(sinks),
                "seconds": round(fan_out_seconds, 2),
                # A log event counts once it has reached all three receivers.
                "log_events_per_s": round(events / fan_out_seconds),
                # Each receiver's copy of an event counted apart (three per log event).
                "deliveries_per_s": round(len(sinks) * events / fan_out_seconds),
                # Start-up included; each worker process apart, then their sum.
                "worker_cpu_seconds": worker_cpu
                | {"total": round(sum(cpu or 0.0 for cpu in worker_cpu.values()), 2)},
            },
            fan_out_load,
        ),
        "removal_to_ack_seconds": latency_summary(latencies, unit="s")
        | {"mean_s": round(statistics.fmean(latencies), 3)},
    }


# The worker processes the bench starts, each with its `registry worker` options.
SPLIT_WORKERS = {"deliveries": ["--jobs", "deliveries"], "other_jobs": ["--skip-jobs", "deliveries"]}
ONE_WORKER: dict[str, list[str]] = {"worker": []}


def _removals(
    port: int,
    admin_key: str,
    listings: list[tuple[str, str]],
    count: int,
    sinks: list[_Sink],
    secrets_file: Path,
) -> list[float]:
    signers = {
        code: (kid, Ed25519PrivateKey.from_private_bytes(raw))
        for code, (kid, raw) in load_signers(secrets_file.parent / "demo-keys.json").items()
    }
    today = today_in_china().isoformat()
    chosen = random.Random(11).sample(listings, min(count, len(listings)))  # noqa: S311 - sampling, not secrets
    sent: dict[str, float] = {}
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as http:
        _wait(lambda: _healthy(http), 60, "registry serve")
        for listing_id, court_code in chosen:
            key_id, private = signers[court_code]
            body = {"listing_id": listing_id, "reason": "performed", "effective_on": today,
                    "triggered_on": today, "basis_document": "bench"}  # fmt: skip
            envelope = sign_envelope("removal", body, private, key_id)
            sent[listing_id] = time.perf_counter()
            response = http.post(f"/v1/listings/{listing_id}/removal", json=envelope)
            if response.status_code != 200:
                raise RuntimeError(f"bench: removal refused: {response.status_code} {response.text}")
            time.sleep(0.02)  # a court's clerk, not a batch
    _wait(lambda: all(len(s.removed_at) >= len(sent) for s in sinks), 600, "the removals to arrive")
    return [max(s.removed_at[lid] for s in sinks) - at for lid, at in sent.items()]


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process so far (start-up included)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def _healthy(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
