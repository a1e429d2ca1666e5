"""`registry worker --jobs / --skip-jobs`: the background jobs split across processes (the
deliveries in one, every other job in another, as deploy/ runs them). Each job runs where it
is configured and only there; two delivery processes never send one subscription at once;
a singleton is elected on SQLite as on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from registry.clients.services import create_client
from registry.eventlog.types import LISTING_EVENTS
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from service.plugins import PLUGINS
from service.scheduler import JOB_GROUPS, UnknownJob, build_scheduler, plugin_jobs, select_jobs
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import publish_one
from tests.support.processes import registry_process
from tests.support.sync_receiver import running_receiver

DELIVERIES = {"sync_push_delivery", "watchlist_push"}
WORKER_ENV = {
    "REGISTRY_SYNC_INTERVAL_SECONDS": "0.2",
    "REGISTRY_SYNC_BATCH_SIZE": "2",
    "REGISTRY_INGEST_WORKERS": "1",
}


def test_the_deliveries_group_and_the_rest_split_every_job_once(settings: Settings) -> None:
    every = {job.id for job in plugin_jobs(settings, PLUGINS)}
    assert set(JOB_GROUPS["deliveries"]) == DELIVERIES <= every
    deliveries = select_jobs(settings, PLUGINS, only=["deliveries"])
    rest = select_jobs(settings, PLUGINS, skip=["deliveries"])
    assert deliveries == DELIVERIES
    assert rest == every - DELIVERIES and not deliveries & rest
    assert select_jobs(settings, PLUGINS) == every
    assert select_jobs(settings, PLUGINS, only=["statistics", "translog"]) == {"statistics", "translog"}
    with pytest.raises(UnknownJob, match="'nope'"):
        select_jobs(settings, PLUGINS, only=["nope"])


def test_a_scheduler_holds_exactly_the_jobs_chosen(settings: Settings, engine: sa.Engine) -> None:
    async def chosen(only: frozenset[str] | None) -> set[str]:
        services = Services.create(settings)
        try:
            return {job.id for job in build_scheduler(services, PLUGINS, only).get_jobs()}
        finally:
            await services.close()

    every = {job.id for job in plugin_jobs(settings, PLUGINS)}
    assert asyncio.run(chosen(None)) == every
    assert asyncio.run(chosen(frozenset(DELIVERIES))) == DELIVERIES


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--jobs", "deliveries,nope"], "'nope'"),
        (["--jobs", "deliveries", "--skip-jobs", "deliveries"], "no job left"),
    ],
)
def test_an_unknown_or_empty_choice_is_refused(settings: Settings, args: list[str], error: str) -> None:
    refused = subprocess.run(
        [registry_bin(), "worker", *args], env=cli_env(settings), capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2 and error in refused.stderr


def _cursor(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(sa.text("SELECT position FROM reader_cursors WHERE name = :n"), {"n": name})
        return int(found.scalar() or 0)


def _head(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one())


def _wait(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_each_job_runs_only_in_its_process_and_two_delivery_processes_never_send_at_once(
    registry: Registry,
    court: CourtHandle,
    admin: httpx.Client,
    settings: Settings,
    engine: sa.Engine,
    tmp_path: Path,
) -> None:
    for _ in range(10):
        publish_one(registry, court, registry.listing(court))
    with engine.begin() as conn:
        agency_id, _ = create_client(conn, "中国人民银行征信中心", "agency", None, actor="test", now=utcnow())
    with (
        running_receiver(default="sleep:0.1") as first,
        running_receiver(default="sleep:0.1") as second,
        ExitStack() as stack,
    ):
        for receiver in (first, second):
            created = admin.post(
                "/v1/sync/subscriptions",
                json={
                    "client_id": agency_id,
                    "profile": "credit_reference",
                    "mode": "push",
                    "endpoint_url": receiver.url,
                },
            )
            assert created.status_code == 201, created.text
        head = _head(engine)
        # Every job but the deliveries: the notices and statistics catch up, nothing is pushed.
        stack.enter_context(
            registry_process(
                settings, ["worker", "--skip-jobs", "deliveries"], WORKER_ENV, tmp_path / "rest.log"
            )
        )
        _wait(
            lambda: _cursor(engine, "sync.notices") >= head and _cursor(engine, "statistics") >= head,
            "the readers",
        )
        time.sleep(1.0)  # five delivery intervals
        assert first.deliveries == [] and second.deliveries == []

        # Two delivery processes, started together on the same backlog: each subscription is
        # sent by one of them at a time, in order, each batch once.
        for n in range(2):
            stack.enter_context(
                registry_process(
                    settings, ["worker", "--jobs", "deliveries"], WORKER_ENV, tmp_path / f"deliveries{n}.log"
                )
            )
        for _ in range(6):
            publish_one(registry, court, registry.listing(court))
        events = admin.get("/v1/events", params={"limit": 1000}).json()["events"]
        listed = [e["seq"] for e in events if e["type"] in LISTING_EVENTS]
        _wait(lambda: all(len(r.unique()) >= len(listed) for r in (first, second)), "the pushes")
        _wait(lambda: _cursor(engine, "sync.notices") >= _head(engine), "the notices of the new listings")
    for receiver in (first, second):
        assert receiver.max_in_flight == 1
        assert [e["seq"] for e in receiver.unique()] == listed
        keys = [d.headers["idempotency-key"] for d in receiver.deliveries]
        assert len(keys) == len(set(keys)), "a batch was sent twice"
        assert len(receiver.received) == len(receiver.unique())
