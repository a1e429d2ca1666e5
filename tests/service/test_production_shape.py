"""The production shape on one PostgreSQL database: two `registry serve --no-scheduler` web
processes and two `registry worker` processes, under concurrent ingest, removals, bank checks
and agency pushes to a local receiver.

What must hold: no duplicate work (each event pushed and acknowledged once per subscription,
in order; each assistance notice once; each search document right), no lost event (every
reader's cursor reaches the log head; feeds, search, watchlists and the transparency log
agree with the log), and the shared public limit holds across both web processes.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.clients.services import create_client
from registry.eventlog.types import LISTING_EVENTS
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry, free_port
from tests.support.listings import removal_body
from tests.support.processes import registry_process, wait_until_up
from tests.support.sync_receiver import running_receiver

pytestmark = pytest.mark.slow

WORKER_ENV = {
    "REGISTRY_SEARCH_INDEX_INTERVAL_SECONDS": "0.5",
    "REGISTRY_PUBLICATIONS_INTERVAL_SECONDS": "0.5",
    "REGISTRY_LOG_INTERVAL_SECONDS": "1",
    "REGISTRY_WATCHLIST_INTERVAL_SECONDS": "1",
    "REGISTRY_SYNC_INTERVAL_SECONDS": "0.5",
    "REGISTRY_INGEST_WORKERS": "1",
}


def _scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _rows(engine: sa.Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(sql), params).all()]


def test_two_web_and_two_worker_processes_do_every_piece_of_work_once(
    registry: Registry,
    court: CourtHandle,
    admin: httpx.Client,
    settings: Settings,
    engine: sa.Engine,
    redis_url: str,
    tmp_path: Path,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the production shape is PostgreSQL's: on SQLite one process is the service")
    bank_key = registry.client("bank")
    with engine.begin() as conn:
        agency_id, _ = create_client(conn, "中国人民银行征信中心", "agency", None, actor="test", now=utcnow())
    web_env = {
        "REGISTRY_PUBLIC_RATE_LIMIT": "5/minute",
        "REGISTRY_REDIS_URL": redis_url,
        "REGISTRY_REDIS_PREFIX": f"test:{free_port()}:{time.time_ns()}:",
        "REGISTRY_INGEST_WORKERS": "1",
    }
    with running_receiver() as receiver, ExitStack() as stack:
        created = admin.post(
            "/v1/sync/subscriptions",
            json={"client_id": agency_id, "profile": "public", "mode": "push", "endpoint_url": receiver.url},
        )
        assert created.status_code == 201, created.text
        subscription = created.json()["id"]
        webs = []
        for n in range(2):
            port = free_port()
            command = ["serve", "--no-scheduler", "--port", str(port)]
            started = stack.enter_context(
                registry_process(settings, command, web_env, tmp_path / f"web{n}.log")
            )
            webs.append((f"http://127.0.0.1:{port}", started))
        for n in range(2):
            stack.enter_context(
                registry_process(settings, ["worker"], WORKER_ENV, tmp_path / f"worker{n}.log")
            )
        for url, started in webs:
            wait_until_up(url, started, "/readyz")
        urls = [url for url, _ in webs]

        # A bank watches some debtors before they are listed.
        bodies = [[registry.person_listing(court) for _ in range(15)] for _ in range(6)]
        watched = [batch[0]["debtor"]["id_number"] for batch in bodies]
        with httpx.Client(base_url=urls[0], headers={"Authorization": f"Bearer {bank_key}"}) as bank:
            answer = bank.post(
                "/v1/watchlist/subjects", json={"subjects": [{"id_number": n} for n in watched]}
            )
            assert answer.status_code == 200, answer.text

        published: list[str] = []
        watched_ids: list[str] = []  # the listings of the watched debtors
        errors: list[str] = []
        lock = threading.Lock()

        def court_client(i: int) -> None:
            url = urls[i % 2]
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {court.api_key}"}, timeout=120
            ) as http:
                envelopes = [registry.envelope(court, body) for body in bodies[i]]
                answer = http.post("/v1/listings/batch", json={"envelopes": envelopes})
                if answer.status_code != 200:
                    errors.append(answer.text)
                    return
                ids = [r["listing_id"] for r in answer.json()["results"]]
                # Removals through the other web process, while the next batches come in.
                with httpx.Client(
                    base_url=urls[(i + 1) % 2],
                    headers={"Authorization": f"Bearer {court.api_key}"},
                    timeout=120,
                ) as other:
                    body = removal_body(ids[1], registry.today)
                    removed = other.post(
                        f"/v1/listings/{ids[1]}/removal", json=registry.envelope(court, body, name="removal")
                    )
                    if removed.status_code != 200:
                        errors.append(removed.text)
                with lock:
                    published.extend(ids)
                    watched_ids.append(ids[0])

        def bank_client(i: int) -> None:
            with httpx.Client(
                base_url=urls[i % 2], headers={"Authorization": f"Bearer {bank_key}"}, timeout=60
            ) as http:
                for n, number in enumerate(watched):
                    answer = http.post(
                        "/v1/checks",
                        json={
                            "subjects": [{"id_number": number}],
                            "purpose": "loan_application",
                            "reference": f"mp-{i}-{n}",
                        },
                    )
                    if answer.status_code != 200:
                        errors.append(answer.text)

        threads = [threading.Thread(target=court_client, args=(i,)) for i in range(6)]
        threads += [threading.Thread(target=bank_client, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        assert errors == []
        assert len(published) == 90

        # The public limit is one budget across both web processes (5 a minute).
        codes = [
            httpx.get(f"{urls[n % 2]}/v1/public/defaulters", params={"q": "张伟"}).status_code
            for n in range(7)
        ]
        assert codes == [200] * 5 + [429] * 2

        head = int(_scalar(engine, "SELECT last_seq FROM log_head"))
        listing_events = [
            row
            for row in _rows(engine, "SELECT seq, type, listing_id FROM events ORDER BY seq")
            if row[1] in LISTING_EVENTS
        ]
        readers = {"search.embedded", "publishing.feeds", "translog", "watchlist", "sync.notices"}
        deadline = time.monotonic() + 120
        while True:
            cursors = dict(_rows(engine, "SELECT name, position FROM reader_cursors"))
            delivered = _scalar(engine, "SELECT cursor FROM sync_subscriptions WHERE id = :s", s=subscription)
            # A reader whose job has not run yet has no cursor row: wait for every one of them.
            caught_up = (
                readers <= set(cursors)
                and all(p == head for p in cursors.values())
                and delivered >= listing_events[-1][0]
            )
            if caught_up and len(receiver.unique()) == len(listing_events):
                break
            assert time.monotonic() < deadline, (cursors, delivered, head, len(receiver.unique()))
            time.sleep(0.5)

    logs = {path.name: path.read_text() for path in tmp_path.glob("*.log")}
    assert not [name for name, text in logs.items() if "Traceback" in text], logs
    # Every reader reached the head: nothing lost.
    assert readers <= set(cursors)
    # Pushes: each event once (no re-send to dedupe), in log order.
    assert [e["seq"] for e in receiver.received] == [seq for seq, _, _ in listing_events]
    # Notices: one per listing event for the push subscription, none twice.
    notices = _rows(
        engine,
        "SELECT listing_id, kind, seq FROM assistance_notices WHERE subscription_id = :s",
        s=subscription,
    )
    assert len(notices) == len(set(notices)) == len(listing_events)
    # Search: exactly the active listings, each at its version.
    active = dict(_rows(engine, "SELECT id, version FROM listings WHERE status = 'active'"))
    assert dict(_rows(engine, "SELECT listing_id, version FROM search_docs")) == active
    # Demo terms can have ended already: the workers expired those, once each.
    expired = [listing_id for _, kind, listing_id in listing_events if kind == "listing.expired"]
    assert len(expired) == len(set(expired)) and len(active) == 90 - 6 - len(expired)
    # Feeds: one row per listing, its last event; the transparency log: one leaf per event.
    latest = {listing_id: kind.split(".")[1] for _, kind, listing_id in listing_events}
    assert dict(_rows(engine, "SELECT listing_id, event FROM publications")) == latest
    assert [r[0] for r in _rows(engine, "SELECT seq FROM translog_leaves ORDER BY leaf_index")] == [
        seq for seq, _, _ in listing_events
    ]
    # Watchlists: one change per event of a watched debtor, in order.
    changes = [r[0] for r in _rows(engine, "SELECT seq FROM watch_changes ORDER BY seq")]
    # One change per event of a watched debtor's listing (listed; expired, if its term ended).
    expected = [seq for seq, _, listing_id in listing_events if listing_id in watched_ids]
    assert changes == expected and len(expected) >= 6
