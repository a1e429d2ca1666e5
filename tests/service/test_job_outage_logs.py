"""A database outage is logged by each scheduled job once when the job first fails for it and
once when it runs again, never a traceback per run: a worker's log stays readable through a
PostgreSQL restart (the operator's audit found 38,800 lines, 325 tracebacks, for 90 s).

Real jobs run as the worker runs them: built by `build_scheduler` (every wrapper the worker
puts around a job) and run by APScheduler's own job runner (which logs what a run raises),
against a PostgreSQL database out of reach (a closed port), then against the test database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from apscheduler.executors.base import run_coroutine_job
from apscheduler.job import Job as ScheduledJob
from sqlalchemy.engine import make_url

from registry.db import Database
from registry.runtime import Services
from registry.settings import Settings
from service.app import process_resources
from service.plugins import PLUGINS
from service.scheduler import build_scheduler
from tests.support.harness import free_port

# A follower woken by the log (with the search engine's back-off inside), a plain job, a
# singleton (elected on PostgreSQL by an advisory lock, itself a connection), a log reader.
JOBS = ["search_follow_log", "expire_fixed_terms", "purge_query_log", "translog"]
DOWN_RUNS = 25


def unreachable_url(settings: Settings) -> str:
    """The test database's URL if it is PostgreSQL, else a PostgreSQL one, on a closed port."""
    url = make_url(settings.database.url)
    if url.get_backend_name() != "postgresql":
        url = make_url("postgresql+asyncpg://registry@127.0.0.1/registry")
    return url.set(host="127.0.0.1", port=free_port()).render_as_string(hide_password=False)


@asynccontextmanager
async def worker_services(settings: Settings) -> AsyncIterator[Services]:
    services = Services.create(settings)
    try:
        async with process_resources(services, PLUGINS):
            yield services
    finally:
        await services.close()


@asynccontextmanager
async def scheduled(services: Services, job_id: str) -> AsyncIterator[ScheduledJob]:
    """`job_id` as the worker's scheduler holds it (paused: the test runs it)."""
    scheduler = build_scheduler(services, PLUGINS, {job_id})
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job(job_id)
        assert job is not None
        yield job
    finally:
        scheduler.shutdown(wait=False)


async def run_as_worker(job: ScheduledJob) -> None:
    """One run of `job` as APScheduler's executor runs it (its exceptions logged there)."""
    await run_coroutine_job(job, "default", [datetime.now(UTC)], "apscheduler.executors.default")


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize("job_id", JOBS)
def test_a_database_outage_is_one_line_down_and_one_line_back(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture, job_id: str
) -> None:
    async def scenario() -> None:
        async with worker_services(settings) as services, scheduled(services, job_id) as job:
            live, down = services.db, Database(unreachable_url(settings))
            try:
                await run_as_worker(job)
                assert lines(caplog) == [], "the database is up: nothing to say"

                services.db = down
                for _ in range(DOWN_RUNS):
                    await run_as_worker(job)
                went_down = lines(caplog)
                caplog.clear()

                services.db = live
                for _ in range(5):
                    await run_as_worker(job)
                came_back = lines(caplog)
                caplog.clear()

                services.db = down
                for _ in range(5):
                    await run_as_worker(job)
                down_again = lines(caplog)
            finally:
                services.db = live
                await down.dispose()

            for records in (went_down, came_back, down_again):
                assert len(records) == 1, [r.getMessage()[:200] for r in records]
                [record] = records
                assert record.exc_info is None and "Traceback" not in record.getMessage()
                assert job_id in record.getMessage()
            assert "database" in went_down[0].getMessage() and "database" in down_again[0].getMessage()
            assert went_down[0].getMessage() != came_back[0].getMessage()

    caplog.set_level(logging.INFO)
    asyncio.run(scenario())


def test_other_failures_are_still_logged_with_their_traceback(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the database being out of reach is quietened: a bug is logged on every run."""

    async def scenario() -> None:
        async with worker_services(settings) as services, scheduled(services, "expire_fixed_terms") as job:
            live = services.db
            services.db = None  # type: ignore[assignment]  # every use of it fails: AttributeError
            try:
                for _ in range(3):
                    await run_as_worker(job)
            finally:
                services.db = live
            failures = lines(caplog)
            assert len(failures) == 3 and all(record.exc_info is not None for record in failures)
            assert all("expire_fixed_terms" in record.getMessage() for record in failures)

    caplog.set_level(logging.INFO)
    asyncio.run(scenario())
