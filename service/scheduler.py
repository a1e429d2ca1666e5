"""Background jobs (APScheduler 3): inside `registry serve` by default, or in `registry worker`.

Every plugin's jobs, on one scheduler per process. Several workers may run on one PostgreSQL
database: the log readers take turns on their cursors, push delivery leases subscriptions,
and a job marked `singleton` runs in one process at a time, elected for each run by a
PostgreSQL advisory lock (`pg_try_advisory_lock`, held on a connection of its own while the
run lasts and released with it, or with the session if the worker dies): the others skip
that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from sqlalchemy import text

from registry.calendar import CHINA_TIME
from registry.eventlog.wake import on_log_appended
from registry.runtime import Services
from registry.timeutil import utcnow
from registry.wiring import Job, Plugin


def build_scheduler(services: Services, plugins: Sequence[Plugin]) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    for plugin in plugins:
        if plugin.jobs is None:
            continue
        for job in plugin.jobs(services.settings):
            _add(scheduler, services, job)
    return scheduler


logger = logging.getLogger("service.scheduler")


def lock_key(job_id: str) -> int:
    """The job's advisory lock: a signed 64-bit number from its id (stable across versions)."""
    return int.from_bytes(hashlib.sha256(f"registry.job.{job_id}".encode()).digest()[:8], "big", signed=True)


def run_alone(
    job_id: str, run: Callable[[Services], Awaitable[object]]
) -> Callable[[Services], Awaitable[object]]:
    """`run`, in this process only if no other process is running it now (PostgreSQL)."""

    async def elected(services: Services) -> object:
        if services.db.is_sqlite:
            return await run(services)
        async with services.db.writer.connect() as conn:
            held = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await held.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(job_id)}):
                logger.debug("%s runs in another process: skipped here", job_id)
                return None
            try:
                return await run(services)
            finally:
                await held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(job_id)})

    return elected


def _wakeable(
    scheduler: AsyncIOScheduler, job_id: str, run: Callable[[Services], Awaitable[object]]
) -> Callable[[Services], Awaitable[object]]:
    """`run`, also started at once when this process commits new log events
    (`registry.eventlog.wake`); a commit during a run makes it run once more right after,
    since the run may have read the log before that commit."""
    running = [0]
    again = [False]
    seen_running = [False]
    loops: list[asyncio.AbstractEventLoop] = []

    async def woken(services: Services) -> object:
        loops[:] = [asyncio.get_running_loop()]
        running[0] += 1
        try:
            while True:
                again[0] = False
                result = await run(services)
                if not again[0]:
                    return result
        finally:
            running[0] -= 1

    def now() -> None:
        with contextlib.suppress(JobLookupError, SchedulerNotRunningError):
            scheduler.modify_job(job_id, next_run_time=utcnow())

    def wake() -> bool:
        if scheduler.state == STATE_STOPPED:
            return not seen_running[0]  # not started yet: keep; stopped: stop calling
        seen_running[0] = True
        if running[0]:
            again[0] = True
            return True
        loop = loops[0] if loops else getattr(scheduler, "_eventloop", None)
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(now)  # commits may come from worker threads
        return True

    on_log_appended(wake)
    return woken


def _add(scheduler: AsyncIOScheduler, services: Services, job: Job) -> None:
    options: dict[str, Any] = {
        "args": [services],
        "id": job.id,
        "coalesce": True,
        "max_instances": job.max_instances,
    }
    if job.misfire_grace_seconds is not None:
        options["misfire_grace_time"] = job.misfire_grace_seconds
    if job.first_after is not None:
        options["next_run_time"] = utcnow() + timedelta(seconds=job.first_after)
    run = run_alone(job.id, job.run) if job.singleton else job.run
    if job.wake_on_log:
        run = _wakeable(scheduler, job.id, run)
    if isinstance(job.every, int | float):
        scheduler.add_job(run, "interval", seconds=job.every, **options)
    else:
        scheduler.add_job(run, "cron", timezone=CHINA_TIME, **dict(job.every), **options)
