"""Ingest under faults: one bad item is that item's result; a lost worker, a cut connection or
a killed server never leaves a bare 500 over committed work, duplicates, or orphan processes."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.identity.crypto import load_secrets
from registry.listings.ingest import store_prepared
from registry.listings.prepare import Preparer
from registry.listings.services import load_context
from registry.settings import Settings
from registry.timeutil import utcnow
from service.app import create_app
from tests.support.harness import CourtHandle, Registry, cli_env, free_port, registry_bin, serve_app
from tests.support.processes import alive, descendants, pool_workers

# Short, for the tests' time, but longer than starting a pool on a busy machine: the stall
# clock runs from the first chunk's submission, so workers still starting count as stalled.
TEST_STALL_SECONDS = 8


def _envelopes(registry: Registry, court: CourtHandle, count: int) -> list[dict[str, Any]]:
    return [registry.envelope(court, registry.listing(court)) for _ in range(count)]


def _listing_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one())


def test_an_item_that_fails_unexpectedly_is_refused_alone(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    """The chunk is stored item by item after a failure no validation foresaw: the item at
    fault gets a problem with a code, the others are stored, in one transaction."""
    envelopes = _envelopes(registry, court, 3)
    with engine.connect() as conn:
        context = load_context(conn, load_secrets(settings), utcnow())
    prepared = [Preparer(context).listing(envelope) for envelope in envelopes]
    prepared[1] = dataclasses.replace(prepared[1], grounds=None)  # type: ignore[arg-type]
    with engine.begin() as conn:
        results = store_prepared(conn, prepared, actor="test", client_court=None)
    assert [r.outcome for r in results] == ["created", "rejected", "created"]
    assert results[1].problem is not None and results[1].problem["code"] == "unprocessable_envelope"
    assert results[1].status == 422
    assert _listing_count(engine) == 2


def _batch_with_a_worker_signalled(
    server: Registry, envelopes: list[dict[str, Any]], court: CourtHandle, signum: int, *, before: set[int]
) -> httpx.Response:
    """POST `envelopes` as one batch to `server`; once it stores, send `signum` to the newest
    of its ingest workers (those not in `before`). Its answer, which must come within two
    minutes; the worker is SIGKILLed at the end whatever `signum` was."""
    answer: list[httpx.Response] = []

    def post() -> None:
        with server.http(court.api_key) as http:
            answer.append(http.post("/v1/listings/batch", json={"envelopes": envelopes}, timeout=300))

    sender = threading.Thread(target=post)
    sender.start()
    deadline = time.monotonic() + 120
    while _listing_count(server.engine) == 0:
        assert time.monotonic() < deadline and sender.is_alive(), "the batch never started storing"
        time.sleep(0.01)
    workers = sorted(pool_workers() - before)
    assert workers, "no ingest worker process of this server found"
    os.kill(workers[-1], signum)
    try:
        sender.join(timeout=120)
        hung = sender.is_alive()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(workers[-1], signal.SIGKILL)
    assert not hung, "the batch hung behind the signalled worker"
    [response] = answer
    return response


def _assert_each_stored_once(response: httpx.Response, engine: sa.Engine, count: int) -> None:
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == count
    assert {r["outcome"] for r in results} <= {"created", "unchanged"}
    # Each item stored exactly once, whether its first attempt committed or not.
    assert _listing_count(engine) == count
    assert len({r["listing_id"] for r in results}) == count


def test_a_worker_killed_mid_batch_is_replaced_and_every_item_answered(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    envelopes = _envelopes(registry, court, 5000)
    response = _batch_with_a_worker_signalled(registry, envelopes, court, signal.SIGKILL, before=set())
    _assert_each_stored_once(response, engine, 5000)


def test_a_stopped_worker_is_replaced_and_every_item_answered(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings
) -> None:
    """A worker that stops without dying (SIGSTOP: what a hung one looks like from outside)
    is not seen by the executor, which watches for deaths only; the service notices that no
    chunk finished for `ingest_stall_seconds`, replaces the pool and tries the chunks again."""
    stalling = settings.override(listings={"ingest_stall_seconds": TEST_STALL_SECONDS, "ingest_workers": 2})
    envelopes = _envelopes(registry, court, 3000)
    before = pool_workers()
    with serve_app(create_app(stalling, run_scheduler=False), free_port()) as url:
        response = _batch_with_a_worker_signalled(
            Registry(engine, url), envelopes, court, signal.SIGSTOP, before=before
        )
    _assert_each_stored_once(response, engine, 3000)


def test_an_import_whose_worker_stops_ends_in_bounded_time_and_runs_again(
    registry: Registry, court: CourtHandle, engine: sa.Engine, settings: Settings, tmp_path: Path
) -> None:
    """`registry import` with a stopped worker ends, neither hanging nor with a traceback:
    if the worker held a chunk, once no chunk finished for the stall time (a message, exit
    1), else once the others are done (its shutdown waits for it that long only). Run again,
    every envelope is stored, once."""
    count = 10_000
    path = tmp_path / "listings.jsonl"
    path.write_text(
        "".join(
            json.dumps(envelope, ensure_ascii=False) + "\n" for envelope in _envelopes(registry, court, count)
        ),
        encoding="utf-8",
    )
    command = [registry_bin(), "import", str(path), "--workers", "2", "--chunk-size", "100"]
    env = cli_env(settings) | {"REGISTRY_INGEST_STALL_SECONDS": str(TEST_STALL_SECONDS)}
    started = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while _listing_count(engine) == 0:
            assert time.monotonic() < deadline and started.poll() is None, "the import never started storing"
            time.sleep(0.01)
        workers = sorted(pool_workers(started.pid))
        assert workers, "no worker process of the import found"
        os.kill(workers[-1], signal.SIGSTOP)
        stopped.append(workers[-1])
        _, stderr = started.communicate(timeout=60)
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if started.poll() is None:
            started.kill()
    assert "Traceback" not in stderr, stderr
    if started.returncode == 1:
        assert f"finished no chunk for {TEST_STALL_SECONDS} s" in stderr, stderr
    else:
        assert started.returncode == 0, stderr

    again = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["created"] + summary["unchanged"] == count and summary["rejected"] == 0
    assert _listing_count(engine) == count


def test_ingest_survives_cut_database_connections(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server connections to cut")
    with registry.http(court.api_key) as http:
        first = http.post("/v1/listings/batch", json={"envelopes": _envelopes(registry, court, 200)})
        assert first.status_code == 200
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        engine.dispose()  # the test's own pool lost its connections too
        second = http.post("/v1/listings/batch", json={"envelopes": _envelopes(registry, court, 200)})
    assert second.status_code == 200, second.text
    assert {r["outcome"] for r in second.json()["results"]} == {"created"}


@pytest.mark.slow
def test_killing_the_server_takes_its_ingest_workers_with_it(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    port = free_port()
    env = cli_env(settings) | {"REGISTRY_INGEST_WORKERS": "2", "REGISTRY_PORT": str(port)}
    server = subprocess.Popen([registry_bin(), "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        envelopes = _envelopes(registry, court, 200)
        answer = httpx.post(
            f"{url}/v1/listings/batch",
            json={"envelopes": envelopes},
            headers={"Authorization": f"Bearer {court.api_key}"},
            timeout=120,
        )
        assert answer.status_code == 200
        helpers = descendants(server.pid)
        assert helpers, "the batch started no worker processes"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in helpers):
        assert time.monotonic() < deadline, "ingest workers outlived their server"
        time.sleep(0.2)


def test_a_worker_that_died_while_the_pool_was_idle_is_replaced_at_the_next_batch(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    """The executor learns of a death between batches only when the next batch is submitted:
    that batch is stored by a fresh pool (it was a 500 until the service restarted)."""
    with registry.http(court.api_key) as http:
        first = http.post("/v1/listings/batch", json={"envelopes": _envelopes(registry, court, 65)})
        assert first.status_code == 200, first.text
        workers = sorted(pool_workers())  # this server's pool, started now or by an earlier test
        assert workers, "no ingest worker process of this server found"
        os.kill(workers[-1], signal.SIGKILL)  # the newest: a worker, not the forkserver
        deadline = time.monotonic() + 30
        while alive(workers[-1]):
            assert time.monotonic() < deadline, "the killed worker never went"
            time.sleep(0.05)
        time.sleep(1)  # the executor's manager thread marks the pool broken
        counted = _listing_count(engine)
        second = http.post("/v1/listings/batch", json={"envelopes": _envelopes(registry, court, 65)})
    assert second.status_code == 200, second.text
    assert {r["outcome"] for r in second.json()["results"]} == {"created"}
    assert _listing_count(engine) == counted + 65
