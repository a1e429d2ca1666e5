"""A job marked `singleton` runs in one process at a time across workers on one PostgreSQL
database (an advisory lock elects each run); every other job may run in every worker."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from registry.runtime import Services
from registry.settings import Settings
from service.plugins import PLUGINS
from service.scheduler import lock_key, run_alone

# The jobs that must not run twice at once: each does work the others would repeat.
SINGLETONS = {"purge_query_log", "daily_export", "search_reconcile"}


def test_the_jobs_that_must_run_once_are_marked(settings: Settings) -> None:
    marked = {job.id for plugin in PLUGINS if plugin.jobs for job in plugin.jobs(settings) if job.singleton}
    assert marked == SINGLETONS


def test_a_singleton_run_is_skipped_while_another_process_holds_it(
    settings: Settings, engine: sa.Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's election (a file lock): tests/service/test_worker_jobs.py")
    ran: list[str] = []

    async def job(_services: Services) -> str:
        ran.append("run")
        return "done"

    async def attempt() -> object:
        services = Services.create(settings)
        try:
            return await run_alone("purge_query_log", job)(services)
        finally:
            await services.close()

    with engine.connect() as other:  # another worker, mid-run
        assert other.execute(
            sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key("purge_query_log")}
        ).scalar()
        assert asyncio.run(attempt()) is None and ran == []
        other.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key("purge_query_log")})
        other.commit()
    assert asyncio.run(attempt()) == "done" and ran == ["run"]
    assert asyncio.run(attempt()) == "done" and ran == ["run", "run"], "released after each run"
