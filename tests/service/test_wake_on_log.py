"""A removal reaches the followers at once (issue 18 #11, issue 20): the commit that appends
log events wakes the search indexer, the feeds' reader and the push worker of its process,
instead of each waiting for its interval."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from registry.clients.services import create_client
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.harness import CourtHandle, Registry, run_search_indexer, serve_app
from tests.support.listings import post_removal, publish_one, removal_body
from tests.support.sync_receiver import running_receiver

INTERVAL = 60.0  # far longer than the test may take: only a wake can make it pass


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not woken: waited for the interval"
        time.sleep(0.02)
    return time.monotonic() - started


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
