"""A removal reaches the followers at once (issue 18 #11, issue 20): the commit that appends
log events wakes the search indexer, the feeds' reader and the push worker of its process,
instead of each waiting for its interval."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from registry.clients.services import create_client
from registry.eventlog.wake import log_notifications
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.checks import bank
from tests.support.harness import (
    CourtHandle,
    Registry,
    cli_env,
    registry_bin,
    run_search_indexer,
    serve_app,
)
from tests.support.listings import post_removal, publish_one, removal_body
from tests.support.sync_receiver import running_receiver

INTERVAL = 60.0  # far longer than the test may take: only a wake can make it pass


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not woken: waited for the interval"
        time.sleep(0.02)
    return time.monotonic() - started


def _indexed(registry: Registry, listing_id: str) -> bool:
    with registry.engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM search_docs WHERE listing_id = :id")
        return bool(conn.execute(query, {"id": listing_id}).scalar_one())


def test_a_removal_wakes_the_indexer_the_feeds_and_the_push_worker(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    body = registry.person_listing(court)
    listing_id = publish_one(registry, court, body)
    run_search_indexer(registry.engine)
    with registry.engine.begin() as conn:
        agency_id, _ = create_client(conn, "征信中心", "agency", None, actor="test", now=utcnow())
    _, as_bank = bank(registry)
    watched = as_bank.post(
        "/v1/watchlist/subjects", json={"subjects": [{"id_number": body["debtor"]["id_number"]}]}
    )
    assert watched.json()["results"][0]["status"] == "added"
    slow = settings.override(
        search={"index_interval_seconds": INTERVAL},
        feeds={"publications_interval_seconds": INTERVAL},
        sync={"interval_seconds": INTERVAL},
        checks={"watchlist_interval_seconds": INTERVAL},
    )
    with running_receiver() as receiver:
        head = admin.get("/v1/events", params={"limit": 1000}).json()["events"][-1]["seq"]
        created = admin.post(
            "/v1/sync/subscriptions",
            json={
                "client_id": agency_id,
                "profile": "credit_reference",
                "mode": "push",
                "endpoint_url": receiver.url,
                "from_seq": head,
            },
        )
        assert created.status_code == 201, created.text
        with serve_app(create_app(slow, run_scheduler=True)) as url, httpx.Client(base_url=url) as http:
            assert http.get(f"/v1/public/defaulters/{listing_id}").status_code == 200
            time.sleep(1.0)  # the scheduler's first runs (push delivery starts at once) are over
            response = post_removal(registry, court, listing_id, removal_body(listing_id, registry.today))
            assert response.status_code == 200, response.text

            def delta_has_it() -> bool:
                items = http.get("/v1/publications", params={"after": 0, "limit": 1000}).json()["items"]
                return any(i["event"] == "removed" and i["removal"]["id"] == listing_id for i in items)

            def pushed() -> bool:
                return any(
                    e["type"] == "listing.removed" and e["listing_id"] == listing_id
                    for e in receiver.received
                )

            _within(5, lambda: http.get(f"/v1/public/defaulters/{listing_id}").status_code == 404)
            _within(5, delta_has_it)
            _within(5, pushed)

            def bank_told() -> bool:
                changes = as_bank.get("/v1/watchlist/changes", params={"after": 0}).json()["changes"]
                return any(c["listing_id"] == listing_id and c["change"] == "removed" for c in changes)

            # The bank's watchlist reader is woken too (it waited its interval: 9-11 s).
            _within(5, bank_told)


def _ready(heartbeat: Path, started: float) -> None:
    """Until the worker beats: its resources (the LISTEN connection) and scheduler are up."""
    deadline = time.monotonic() + 60
    while not (heartbeat.exists() and heartbeat.stat().st_mtime >= started):
        assert time.monotonic() < deadline, "the worker did not start"
        time.sleep(0.1)
    time.sleep(1.0)  # its first runs (each job starts with one) are over


@pytest.mark.parametrize("options", ["", "?connect_timeout=5&application_name=registry-worker"])
def test_on_postgresql_a_removal_committed_by_a_web_process_wakes_a_worker(
    registry: Registry, court: CourtHandle, settings: Settings, options: str
) -> None:
    """The production shape: the web process (this test's server, no jobs) commits the
    removal; a separate `registry worker` with 60 s intervals applies it to the search index
    at once, woken by PostgreSQL's NOTIFY; with libpq options in the URL too (its LISTEN
    connection was refused `connect_timeout`, and the worker waited its intervals)."""
    if settings.database.is_sqlite:
        pytest.skip("SQLite runs one process: the in-process wake covers it")
    listing_id = publish_one(registry, court, registry.person_listing(court))
    run_search_indexer(registry.engine)
    env = cli_env(settings) | {
        "REGISTRY_SEARCH_INDEX_INTERVAL_SECONDS": str(INTERVAL),
        "REGISTRY_PUBLICATIONS_INTERVAL_SECONDS": str(INTERVAL),
        "REGISTRY_SYNC_INTERVAL_SECONDS": str(INTERVAL),
        "REGISTRY_LOG_LEVEL": "WARNING",
        "REGISTRY_DATABASE_URL": settings.database.url + options,
    }
    worker = subprocess.Popen([registry_bin(), "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _ready(settings.server.worker_heartbeat_file, started=time.time())
        with registry.http() as public:
            assert public.get(f"/v1/public/defaulters/{listing_id}").status_code == 200
            response = post_removal(registry, court, listing_id, removal_body(listing_id, registry.today))
            assert response.status_code == 200, response.text
            _within(5, lambda: public.get(f"/v1/public/defaulters/{listing_id}").status_code == 404)
        # The entry answers from the listing as committed; the index's own row leaves when
        # the worker's follower is woken (its interval is a minute).
        _within(5, lambda: not _indexed(registry, listing_id))
    finally:
        worker.terminate()
        worker.wait(timeout=10)


def test_on_postgresql_a_lost_listening_connection_is_listened_on_again(
    registry: Registry, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A PostgreSQL restart or failover cut the LISTEN connection for good: every follower
    stayed on its interval until the process restarted. And a clean stop logged a false
    "log notifications lost" at every deploy."""
    if settings.database.is_sqlite:
        pytest.skip("SQLite runs one process: nothing to listen to")
    name = f"wake-test-{os.getpid()}"
    url = settings.database.url
    own = settings.override(database={"url": f"{url}{'&' if '?' in url else '?'}application_name={name}"})
    listening = sa.text(
        "SELECT pid FROM pg_stat_activity WHERE application_name = :name AND query LIKE 'LISTEN%'"
    )

    def pids() -> set[int]:
        with registry.engine.connect() as conn:
            return set(conn.execute(listening, {"name": name}).scalars())

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(200):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("not within 10 s")

    services = Services.create(own)

    async def scenario() -> None:
        async with log_notifications(services):
            await until(lambda: len(pids()) == 1)
            [first] = pids()
            with registry.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            await until(lambda: len(pids()) == 1 and first not in pids())
        await until(lambda: not pids())

    caplog.set_level(logging.WARNING, logger="registry.eventlog.wake")
    try:
        asyncio.run(scenario())
    finally:
        asyncio.run(services.close())
    said = [record.getMessage() for record in caplog.records if record.name == "registry.eventlog.wake"]
    assert [message.split(":")[0] for message in said] == ["log notifications lost", "log notifications back"]
