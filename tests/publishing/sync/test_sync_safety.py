"""Nothing sent where it must not go, nothing stuck behind a slow receiver: revocation stops
every flow at once, a pull never reaches before its subscription's start, push endpoints are
public https addresses (checked when set and at each send), every request has a total
deadline and a small answer cap, one endpoint never delays another, and a lease is never
outlived by a request. All against real HTTP receivers."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from publishing.sync.delivery import deliver_due
from publishing.sync.notices import notice_reader
from publishing.sync.outbound import endpoint_client, post
from publishing.sync.plugin import plugin as sync_plugin
from publishing.sync.pool import send_pools
from publishing.sync.revocations import READER as REVOCATIONS
from publishing.sync.watchpush import push_watch_changes
from registry.checks.watchlist import READER as WATCHLIST
from registry.clients.services import create_client, revoke_client
from registry.endpoints import PushPolicy
from registry.eventlog.readers import follow
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from registry.wiring import follow_job
from service.app import create_app
from tests.support.checks import bank, publish_person
from tests.support.harness import CourtHandle, Registry, serve_app
from tests.support.listings import publish_one
from tests.support.publishing import remove
from tests.support.sync_receiver import running_receiver
from tests.support.tls import make_ca


def agency(registry: Registry, name: str = "中国人民银行征信中心") -> tuple[str, str]:
    with registry.engine.begin() as conn:
        return create_client(conn, name, "agency", None, actor="test", now=utcnow())


def subscribe(admin: httpx.Client, client_id: str, mode: str, url: str | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"client_id": client_id, "profile": "credit_reference", "mode": mode, **extra}
    if url is not None:
        body["endpoint_url"] = url
    response = admin.post("/v1/sync/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def fast(settings: Settings, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "timeout_seconds": 2.0,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.2,
        "batch_size": 3,
        "lease_seconds": 10.0,
        "max_attempts": 50,
    }
    values.update(changes)
    return settings.override(sync=values)


def run(settings: Settings, *jobs: Callable[[Services], Awaitable[object]]) -> None:
    """Each job once, in order, in one process's services (as the scheduler would)."""

    async def main() -> None:
        services = Services.create(settings)
        try:
            for job in jobs:
                await job(services)
        finally:
            await services.close()

    asyncio.run(main())


def follower(reader: Any) -> Callable[[Services], Awaitable[object]]:
    async def job(services: Services) -> object:
        return await follow(services.db, reader)

    return job


def head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def subscription(engine: sa.Engine, sub_id: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM sync_subscriptions WHERE id = :id"), {"id": sub_id}).one()


def wait_for(done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---- 1. revocation stops everything at once ----


def test_revoking_a_client_stops_pushes_pulls_notices_and_watchlist_pushes_at_once(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    person = registry.person_listing(court)
    number = person["debtor"]["id_number"]
    agency_id, agency_key = agency(registry)
    bank_id, bank_http = bank(registry)
    notices = follower(notice_reader(3))
    every_job = (
        deliver_due,
        follower(WATCHLIST),
        push_watch_changes,
        notices,
        follower(REVOCATIONS),
    )
    with running_receiver() as agency_rx, running_receiver() as bank_rx, bank_http:
        push_sub = subscribe(admin, agency_id, "push", agency_rx.url)
        pull_sub = subscribe(admin, agency_id, "pull")
        assert bank_http.put("/v1/watchlist/endpoint", json={"endpoint": bank_rx.url}).status_code == 200
        watched = bank_http.post("/v1/watchlist/subjects", json={"subjects": [{"id_number": number}]})
        assert watched.status_code == 200
        listing_id, _ = publish_person(
            registry, court, **{k: v for k, v in person.items() if k != "submission_id"}
        )
        # Before the revocation, everything flows.
        run(fast(settings), *every_job)
        assert [e["listing_id"] for e in agency_rx.received] == [listing_id]
        assert [c["listing_id"] for c in bank_rx.received] == [listing_id]
        with registry.http(agency_key) as http:
            assert http.get(f"/v1/sync/{pull_sub}/events").status_code == 200
            assert len(http.get("/v1/notices").json()) == 2  # one per subscription
        agency_bytes, bank_bytes = len(agency_rx.deliveries), len(bank_rx.deliveries)

        with registry.engine.begin() as conn:
            revoke_client(conn, agency_id, actor="test", now=utcnow())
            revoke_client(conn, bank_id, actor="test", now=utcnow())
        # More to send: a removal of the watched listing, a new listing.
        remove(registry, court, listing_id)
        publish_one(registry, court, registry.listing(court))
        # The jobs run in the order least favourable to the revocation: its reader last.
        run(fast(settings), *every_job)
        run(fast(settings), *every_job)

        assert len(agency_rx.deliveries) == agency_bytes, "a revoked agency received a push"
        assert len(bank_rx.deliveries) == bank_bytes, "a revoked bank received a watchlist push"
        with registry.http(agency_key) as http:
            assert http.get(f"/v1/sync/{pull_sub}/events", params={"after": 0}).status_code == 401
            assert http.post(f"/v1/sync/{pull_sub}/ack", json={"cursor": 1}).status_code == 401
            assert http.get("/v1/notices").status_code == 401
            assert http.get(f"/v1/sync/{pull_sub}/snapshot").status_code == 401
        assert bank_http.get("/v1/watchlist/changes").status_code == 401
    with registry.engine.connect() as conn:
        issued = conn.execute(
            sa.text("SELECT count(*) FROM assistance_notices WHERE client_id = :c"), {"c": agency_id}
        ).scalar_one()
        ended = conn.execute(
            sa.text("SELECT data FROM events WHERE type = 'sync.subscription_ended' ORDER BY seq")
        ).scalars()
        ended_data = [e if isinstance(e, dict) else json.loads(e) for e in ended]
    assert issued == 2, "no notice is issued to a revoked agency"
    assert sorted(d["subscription_id"] for d in ended_data) == sorted([push_sub, pull_sub])
    assert {d["reason"] for d in ended_data} == {"client_revoked"}
    metrics = admin.get("/metrics").text
    for sub_id in (push_sub, pull_sub):
        status = admin.get(f"/v1/sync/subscriptions/{sub_id}").json()
        assert status["state"] == "ended" and status["ended_at"] is not None
        # Owed nothing any more: no backlog to grow and set off an alert.
        assert status["backlog"] == 0
        gauge = re.search(rf'registry_sync_backlog_events{{[^}}]*subscription="{sub_id}"}} (\S+)', metrics)
        assert gauge is not None and gauge.group(1) == "0.0"
        refused = admin.post(f"/v1/sync/subscriptions/{sub_id}/resume")
        assert refused.status_code == 409 and refused.json()["code"] == "subscription_ended"
        replay = admin.post(f"/v1/sync/subscriptions/{sub_id}/replay", json={"from_seq": 0})
        assert replay.json()["code"] == "subscription_ended"
    assert admin.get(f"/v1/sync/subscriptions/{push_sub}/drift").status_code == 200


# ---- 2. a pull never reaches before its subscription's start ----


def test_a_pull_never_reaches_before_the_subscription_start(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    old = publish_one(registry, court, registry.listing(court))
    remove(registry, court, old)  # a removed listing: its full identifier must not leave
    agency_id, key = agency(registry)
    start = head(registry.engine)
    sub = subscribe(admin, agency_id, "pull", from_seq=start)
    new = publish_one(registry, court, registry.listing(court))
    with registry.http(key) as http:
        for after in (0, 1, start - 1):
            refused = http.get(f"/v1/sync/{sub}/events", params={"after": after})
            assert refused.status_code == 422, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            problem = refused.json()
            assert problem["code"] == "cursor_before_start" and problem["start_seq"] == start
            assert old not in refused.text
        page = http.get(f"/v1/sync/{sub}/events", params={"after": start}).json()
        assert [e["listing_id"] for e in page["events"]] == [new]
        assert [e["listing_id"] for e in http.get(f"/v1/sync/{sub}/events").json()["events"]] == [new]
        assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["start_seq"] == start
        # An admin's replay is the only way back: from then on the agency may read from there.
        assert admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": 0}).status_code == 200
        replayed = http.get(f"/v1/sync/{sub}/events", params={"after": 0, "limit": 1000}).json()
        assert old in {e["listing_id"] for e in replayed["events"]}
        # A replay forward does not move the start forward past what the admin opened.
        assert admin.post(f"/v1/sync/subscriptions/{sub}/replay", json={"from_seq": start}).status_code == 200
        assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["start_seq"] == 0


# ---- 3. push endpoints: https to public addresses, checked when set and at each send ----

REFUSED_EVERYWHERE = [
    "https://10.0.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:6379/",
    "https://127.0.0.1/",
    "https://127.1/",  # a name the resolver reads as 127.0.0.1
    "https://localhost/hook",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:8.8.8.8]/",
    "https://[fe80::1]/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://0.0.0.0/",
    "https://192.168.1.1/",
    "https://172.16.0.1/",
    "http://agency.example/hook",
    "http://8.8.8.8/",
]


@pytest.fixture(scope="module")
def strict_url(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    """A server with the defaults: no allowed networks, no plain http."""
    strict = settings.override(push={"allowed_networks": "", "allow_http": False})
    with serve_app(create_app(strict, run_scheduler=False)) as url:
        yield url


def test_push_endpoints_must_be_https_to_public_addresses_when_set(
    registry: Registry, strict_url: str
) -> None:
    admin_key = registry.client("admin")
    agency_id, _ = agency(registry)
    bank_id, _ = bank(registry)
    with registry.engine.begin() as conn:
        _, bank_key = create_client(conn, "Second bank", "bank", None, actor="test", now=utcnow())
    with (
        httpx.Client(base_url=strict_url, headers={"Authorization": f"Bearer {admin_key}"}) as admin,
        httpx.Client(base_url=strict_url, headers={"Authorization": f"Bearer {bank_key}"}) as bank_http,
    ):
        for url in REFUSED_EVERYWHERE:
            body = {"client_id": agency_id, "profile": "public", "mode": "push", "endpoint_url": url}
            refused = admin.post("/v1/sync/subscriptions", json=body)
            assert refused.status_code == 422, url
            assert (
                refused.json()["code"] == "invalid_endpoint_url"
                and refused.json()["pointer"] == "/endpoint_url"
            )
            watch = bank_http.put("/v1/watchlist/endpoint", json={"endpoint": url})
            assert watch.status_code == 422 and watch.json()["code"] == "invalid_endpoint", url
        assert admin.get("/v1/sync/subscriptions").json() == []
        # Public addresses, and names that do not resolve yet (checked again at each send).
        for url in ("https://8.8.8.8/hook", "https://agency.example/hook", "https://[2001:4860::8888]/x"):
            body = {"client_id": agency_id, "profile": "public", "mode": "push", "endpoint_url": url}
            assert admin.post("/v1/sync/subscriptions", json=body).status_code == 201, url
            assert bank_http.put("/v1/watchlist/endpoint", json={"endpoint": url}).status_code == 200
    # The operator's allow-list (here: 127.0.0.1, with plain http) opens exactly that.
    with registry.http(admin_key) as admin:
        for url in (
            "http://127.0.0.2:8080/",
            "http://10.0.0.1/",
            "https://10.0.0.1/",
            "http://agency.example/",
        ):
            body = {"client_id": agency_id, "profile": "public", "mode": "push", "endpoint_url": url}
            assert admin.post("/v1/sync/subscriptions", json=body).status_code == 422, url
        body = {
            "client_id": agency_id,
            "profile": "public",
            "mode": "push",
            "endpoint_url": "http://127.0.0.1:9/",
        }
        assert admin.post("/v1/sync/subscriptions", json=body).status_code == 201
    assert bank_id


def test_each_send_resolves_and_checks_the_address_it_connects_to(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    agency_id, _ = agency(registry)
    with running_receiver() as receiver:
        # A name, accepted when set because it resolved into the allowed network then...
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        sub = subscribe(admin, agency_id, "push", by_name)
        # ...and a worker whose rule no longer allows it: nothing is sent, the error says why.
        closed = fast(settings).override(push={"allowed_networks": "", "allow_http": True})
        run(closed, deliver_due)
        assert receiver.deliveries == []
        refused = admin.get(f"/v1/sync/subscriptions/{sub}").json()
        assert refused["last_error"].startswith("endpoint refused") and refused["failures_total"] == 1
        # Allowed again: the connection goes to the checked address, the name stays in Host.
        admin.post(f"/v1/sync/subscriptions/{sub}/resume")
        run(fast(settings), deliver_due)
        assert receiver.deliveries and receiver.deliveries[0].headers["host"] == by_name.split("/")[2]
        assert subscription(registry.engine, sub).cursor == head(registry.engine)


def test_redirects_are_never_followed(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    agency_id, _ = agency(registry)
    with running_receiver() as target, running_receiver() as redirecting:
        redirecting.default = f"redirect:{target.url}"
        sub = subscribe(admin, agency_id, "push", redirecting.url)
        run(fast(settings), deliver_due)
        assert len(redirecting.deliveries) == 1 and target.deliveries == []
        assert admin.get(f"/v1/sync/subscriptions/{sub}").json()["last_error"] == "HTTP 307"


# ---- 4. slow endpoints: total deadline, small answer cap, isolation, back-off ----


@contextmanager
def scheduler_running(settings: Settings) -> Iterator[None]:
    """The sync plugin's jobs (and the watchlist reader) as the scheduler runs them: each
    every interval, never more instances at once than the job allows, with the plugin's
    per-process resources; in a thread of its own until the block ends."""
    jobs = [*sync_plugin.jobs(settings), follow_job("follow_watchlists", WATCHLIST, every=0.1)]  # type: ignore[misc]
    stop = threading.Event()
    errors: list[BaseException] = []

    async def main() -> None:
        services = Services.create(settings)
        running: dict[str, list[asyncio.Task[object]]] = {job.id: [] for job in jobs}
        try:
            async with send_pools(services):
                while not stop.is_set():
                    for job in jobs:
                        live = [t for t in running[job.id] if not t.done()]
                        if len(live) < job.max_instances:
                            live.append(asyncio.create_task(job.run(services)))
                        running[job.id] = live
                    await asyncio.sleep(0.1)
                for tasks in running.values():
                    for task in tasks:
                        task.cancel()
                await asyncio.gather(*(t for ts in running.values() for t in ts), return_exceptions=True)
        finally:
            await services.close()

    thread = threading.Thread(target=lambda: _capture(errors, lambda: asyncio.run(main())), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, errors


def _capture(errors: list[BaseException], work: Callable[[], object]) -> None:
    try:
        work()
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def watch(http: httpx.Client, receiver_url: str, *numbers: str) -> None:
    assert http.put("/v1/watchlist/endpoint", json={"endpoint": receiver_url}).status_code == 200
    body = {"subjects": [{"id_number": n} for n in numbers]}
    assert http.post("/v1/watchlist/subjects", json=body).status_code == 200


def test_a_trickling_receiver_delays_no_other_subscription_or_bank(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    first, second = registry.person_listing(court), registry.person_listing(court)
    numbers = [first["debtor"]["id_number"], second["debtor"]["id_number"]]
    agency_id, _ = agency(registry)
    _, slow_bank = bank(registry, "Slow bank")
    _, fast_bank = bank(registry, "Fast bank")
    quick = fast(settings, timeout_seconds=3.0, lease_seconds=30.0, interval_seconds=0.1, batch_size=50)
    with (
        running_receiver(default="trickle", trickle_seconds=0.5) as slow_agency,
        running_receiver() as fast_agency,
        running_receiver(default="trickle", trickle_seconds=0.5) as slow_watch,
        running_receiver() as fast_watch,
        slow_bank,
        fast_bank,
    ):
        slow_sub = subscribe(admin, agency_id, "push", slow_agency.url)
        fast_sub = subscribe(admin, agency_id, "push", fast_agency.url)
        watch(slow_bank, slow_watch.url, *numbers)
        watch(fast_bank, fast_watch.url, *numbers)
        with scheduler_running(quick):
            one, _ = publish_person(
                registry, court, **{k: v for k, v in first.items() if k != "submission_id"}
            )
            wait_for(lambda: one in {c["listing_id"] for c in fast_watch.received}, 5, "the first change")
            wait_for(lambda: one in {e["listing_id"] for e in fast_agency.received}, 5, "the first event")
            wait_for(lambda: slow_watch.in_flight == 1 and slow_agency.in_flight == 1, 5, "the trickles")
            # Both slow receivers now hold a request open; the others must not notice.
            published = time.monotonic()
            two, _ = publish_person(
                registry, court, **{k: v for k, v in second.items() if k != "submission_id"}
            )
            wait_for(lambda: two in {c["listing_id"] for c in fast_watch.received}, 2, "the fast bank")
            wait_for(lambda: two in {e["listing_id"] for e in fast_agency.received}, 2, "the fast agency")
            assert time.monotonic() - published < 2
            # The trickles end at the total deadline (3 s), however steadily bytes come.
            wait_for(lambda: slow_watch.hung_up >= 1 and slow_agency.hung_up >= 1, 6, "the deadline")
    assert slow_agency.answer_bytes_sent < 20 and slow_watch.answer_bytes_sent < 20
    status = admin.get(f"/v1/sync/subscriptions/{slow_sub}").json()
    assert status["failures_total"] >= 1 and status["last_error"] == "deadline exceeded"
    assert admin.get(f"/v1/sync/subscriptions/{fast_sub}").json()["failures_total"] == 0


def test_a_huge_answer_is_not_read(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    agency_id, _ = agency(registry)
    with running_receiver(default="huge", huge_bytes=256 * 1024 * 1024) as receiver:
        sub = subscribe(admin, agency_id, "push", receiver.url)
        run(fast(settings, timeout_seconds=10.0), deliver_due)
    # A 2xx is all the registry needs: delivered, and the answer dropped after a few KiB.
    assert subscription(registry.engine, sub).cursor == head(registry.engine)
    assert receiver.hung_up == 1
    assert receiver.answer_bytes_sent < 16 * 1024 * 1024  # what socket buffers took, not 256 MiB


def test_watchlist_pushes_back_off_exponentially(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    body = registry.person_listing(court)
    _, http = bank(registry)
    backing_off = fast(settings, interval_seconds=0.1, backoff_base_seconds=0.4, backoff_max_seconds=10.0)
    with http, running_receiver(default="500") as receiver:
        watch(http, receiver.url, body["debtor"]["id_number"])
        publish_person(registry, court, **{k: v for k, v in body.items() if k != "submission_id"})
        with scheduler_running(backing_off):
            wait_for(lambda: len(receiver.deliveries) >= 1, 5, "the first push")
            time.sleep(2.5)
        # 0.2-0.4 s, then 0.4-0.8 s, then 0.8-1.6 s: a handful of attempts, not one per pass (25).
        assert 2 <= len(receiver.deliveries) <= 5, len(receiver.deliveries)
        status = http.get("/v1/watchlist").json()["push"]
    assert status["attempts"] == len(receiver.deliveries) and status["last_error"] == "HTTP 500"
    assert status["failures_total"] == status["attempts"] and status["next_attempt_at"] is not None
    assert status["pending_changes"] == 1 and status["last_delivered_at"] is None


# ---- 5. leases: never outlived by a request; a lost one is reported ----


def test_a_trickling_receiver_sees_each_batch_once_at_a_time(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    for _ in range(2):
        publish_one(registry, court, registry.listing(court))
    agency_id, _ = agency(registry)
    # A per-request setting longer than the lease: the lease bounds it (half of it).
    short_lease = fast(settings, lease_seconds=2.0, timeout_seconds=30.0, backoff_base_seconds=0.05)

    async def workers(seconds: float) -> None:
        """Two workers (their own services, as two processes), each passing as often as it
        can, for `seconds` (a pass still running then is cancelled)."""
        pair = [Services.create(short_lease) for _ in range(2)]

        async def passes(services: Services, name: str) -> None:
            while True:
                await deliver_due(services, name)
                await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(passes(s, f"worker-{n}")) for n, s in enumerate(pair)]
        try:
            await asyncio.wait(tasks, timeout=seconds)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for services in pair:
                await services.close()

    with running_receiver(default="trickle", trickle_seconds=0.2) as receiver:
        sub = subscribe(admin, agency_id, "push", receiver.url)
        asyncio.run(workers(5.0))
    keys = [d.headers["idempotency-key"] for d in receiver.deliveries]
    assert len(keys) >= 2 and len(set(keys)) == 1, keys  # the same batch, retried...
    assert receiver.max_in_flight == 1  # ...but never two at once
    status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    assert status["last_error"] == "deadline exceeded" and status["lease_lost_total"] == 0


def test_a_lost_lease_is_reported_in_status_and_metrics(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    publish_one(registry, court, registry.listing(court))
    agency_id, _ = agency(registry)
    with running_receiver(default="sleep:1.0") as receiver:
        sub = subscribe(admin, agency_id, "push", receiver.url)

        def steal() -> None:
            # While the worker's request is in flight, another worker takes the subscription
            # over (as if the first had stalled past its lease).
            wait_for(lambda: receiver.in_flight == 1, 10, "the request")
            with registry.engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE sync_subscriptions SET lease_owner = 'other-worker' WHERE id = :id"),
                    {"id": sub},
                )

        thief = threading.Thread(target=steal)
        thief.start()
        run(fast(settings), deliver_due)
        thief.join()
    status = admin.get(f"/v1/sync/subscriptions/{sub}").json()
    assert status["lease_lost_total"] == 1 and status["last_lease_lost_at"] is not None
    assert status["cursor"] < head(registry.engine)  # the stalled worker did not move the cursor
    labels = f'client="{agency_id}",mode="push",profile="credit_reference",subscription="{sub}"'
    assert f"registry_sync_lease_lost{{{labels}}} 1.0" in admin.get("/metrics").text


def test_https_connects_to_the_checked_address_and_verifies_the_name(tmp_path: Path) -> None:
    authority = make_ca(tmp_path, ["localhost"])
    loopback = PushPolicy(networks=(ip_network("127.0.0.1/32"),))  # https only

    def send(url: str, policy: PushPolicy = loopback) -> str | None:
        async def main() -> str | None:
            async with endpoint_client(policy, 5.0, verify=authority.client()) as http:
                body = b'{"events": []}'
                headers = {"content-type": "application/json"}
                return await post(http, url, body, headers, deadline=5.0, max_answer_bytes=1024)

        return asyncio.run(main())

    with running_receiver(tls=authority.server, host="localhost") as receiver:
        # Resolved once, connected to 127.0.0.1, the name kept for SNI, the certificate and Host.
        assert send(receiver.url) is None
        assert receiver.deliveries[0].headers["host"] == receiver.url.split("/")[2]
        # The same server by its address: the certificate does not name it, TLS refuses.
        assert send(receiver.url.replace("localhost", "127.0.0.1")) == "ConnectError"
        # No allow-list: refused before a byte is sent; plain http is refused outright.
        assert str(send(receiver.url, PushPolicy())).startswith("endpoint refused")
        assert str(send(receiver.url.replace("https", "http"))).startswith("endpoint refused")
        assert len(receiver.deliveries) == 1


def test_the_allow_list_setting_is_parsed_and_refused_when_malformed(settings: Settings) -> None:
    opened = settings.override(push={"allowed_networks": "10.20.0.0/16, agency.internal 127.0.0.1"})
    policy = PushPolicy.from_settings(opened)
    assert policy.hosts == frozenset({"agency.internal"}) and len(policy.networks) == 2
    for bad in ("10.0.0.0/33", "http://agency.internal", "agency_internal/x", "机构.example"):
        with pytest.raises(ValueError, match=r"not a network nor a host name"):
            settings.override(push={"allowed_networks": bad})
