"""A removal reaches the followers at once (issue 18 #11, issue 20): the commit that appends
log events wakes the search indexer, the feeds' reader and the push worker of its process,
instead of each waiting for its interval."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from registry.clients.services import create_client
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
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
    listing_id = publish_one(registry, court, registry.person_listing(court))
    run_search_indexer(registry.engine)
    with registry.engine.begin() as conn:
        agency_id, _ = create_client(conn, "征信中心", "agency", None, actor="test", now=utcnow())
    slow = settings.override(
        search={"index_interval_seconds": INTERVAL},
        feeds={"publications_interval_seconds": INTERVAL},
        sync={"interval_seconds": INTERVAL},
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
