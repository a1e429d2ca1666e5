"""A job marked `singleton` runs in one process at a time across workers on one database
(PostgreSQL: an advisory lock elects each run; SQLite: a file lock beside the database);
every other job may run in every worker."""

from __future__ import annotations

import asyncio
import fcntl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from registry.db import sqlite_path
from registry.runtime import Services
from registry.settings import Settings
from service.plugins import PLUGINS
from service.scheduler import lock_key, run_alone

# The jobs that must not run twice at once: each does work the others would repeat.
SINGLETONS = {"purge_query_log", "daily_export", "search_reconcile", "search_recent_index"}


def test_the_jobs_that_must_run_once_are_marked(settings: Settings) -> None:
    marked = {job.id for plugin in PLUGINS if plugin.jobs for job in plugin.jobs(settings) if job.singleton}
    assert marked == SINGLETONS


@contextmanager
def held_elsewhere(settings: Settings, engine: sa.Engine, job_id: str) -> Iterator[None]:
    """`job_id`'s election held by another worker, mid-run: PostgreSQL's advisory lock, or
    SQLite's file lock beside the database."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as other:
            assert other.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(job_id)}).scalar()
            yield
            other.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(job_id)})
            other.commit()
        return
    path = sqlite_path(settings.database.url)
    assert path is not None
    with open(path.with_name(f"{path.name}.job-{job_id}.lock"), "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
        fcntl.flock(other, fcntl.LOCK_UN)


def test_a_singleton_run_is_skipped_while_another_process_holds_it(
    settings: Settings, engine: sa.Engine
) -> None:
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

    with held_elsewhere(settings, engine, "purge_query_log"):
        assert asyncio.run(attempt()) is None and ran == []
    assert asyncio.run(attempt()) == "done" and ran == ["run"]
    assert asyncio.run(attempt()) == "done" and ran == ["run", "run"], "released after each run"


def test_a_singleton_started_moments_ago_in_another_process_is_not_run_again(
    settings: Settings, engine: sa.Engine
) -> None:
    """Two workers schedule the job on their own clocks, a second apart: the second worker,
    elected once the first has finished, skips that run; after the spacing it runs again."""
    ran: list[str] = []

    async def job(_services: Services) -> str:
        ran.append("run")
        return "done"

    async def attempt(spacing: float) -> object:
        services = Services.create(settings)  # a worker of its own, as another process has
        try:
            return await run_alone("search_reconcile", job, spacing)(services)
        finally:
            await services.close()

    assert asyncio.run(attempt(60)) == "done"
    assert asyncio.run(attempt(60)) is None and ran == ["run"]
    assert asyncio.run(attempt(0.001)) == "done" and ran == ["run", "run"]
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM job_runs WHERE job_id = 'search_reconcile'")
        runs = conn.execute(query).scalar()
    assert runs == 1


def test_a_singleton_run_that_failed_does_not_keep_another_worker_from_running_it(
    settings: Settings, engine: sa.Engine
) -> None:
    """A run that raised did not do the work: the next worker's schedule runs it at once,
    not half an interval later; a run that succeeded still spaces the next."""
    ran: list[str] = []

    async def failing(_services: Services) -> str:
        ran.append("failed")
        raise RuntimeError("disk full")

    async def job(_services: Services) -> str:
        ran.append("run")
        return "done"

    async def attempt(run: Callable[[Services], Awaitable[str]]) -> object:
        services = Services.create(settings)
        try:
            return await run_alone("daily_export", run, 3600)(services)
        finally:
            await services.close()

    with pytest.raises(RuntimeError):
        asyncio.run(attempt(failing))
    assert asyncio.run(attempt(job)) == "done" and ran == ["failed", "run"]
    assert asyncio.run(attempt(failing)) is None, "the run that succeeded spaces the next"
    assert ran == ["failed", "run"]
