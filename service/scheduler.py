"""Background jobs (APScheduler 3): inside `registry serve` by default, or in `registry worker`.

Every plugin's jobs (or those chosen with `registry worker --jobs/--skip-jobs`), on one
scheduler per process. Several workers may run on one database: the log readers take turns
on their cursors, push delivery leases subscriptions, and a job marked `singleton` runs in
one process at a time, elected for each run by a PostgreSQL advisory lock
(`pg_try_advisory_lock`, held on a connection of its own while the run lasts and released
with it, or with the session if the worker dies), on SQLite by a `flock` on a file beside
the database: the others skip that run.

A run that fails because the database is out of reach (`registry.problems.database_unavailable`)
is not a traceback per run: each job logs one line when it first fails so, and one when it
runs again (`quiet_outages`); any other failure is APScheduler's to log, with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from sqlalchemy import Connection, delete, insert, select, text, update

from registry.calendar import CHINA_TIME
from registry.db import sqlite_path
from registry.eventlog.models import JobRun
from registry.eventlog.wake import on_log_appended
from registry.identity.crypto import KeysOutOfStep
from registry.problems import database_unavailable
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow
from registry.wiring import Job, Plugin


def build_scheduler(
    services: Services, plugins: Sequence[Plugin], only: Collection[str] | None = None
) -> AsyncIOScheduler:
    """Every plugin's jobs, or with `only` the jobs of those ids (`select_jobs`)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in plugin_jobs(services.settings, plugins):
        if only is None or job.id in only:
            _add(scheduler, services, job)
    return scheduler


def plugin_jobs(settings: Settings, plugins: Sequence[Plugin]) -> list[Job]:
    return [job for plugin in plugins if plugin.jobs is not None for job in plugin.jobs(settings)]


# Named sets of jobs for `registry worker --jobs/--skip-jobs`. The deliveries (agency and bank
# pushes: rendering, signing, sending) get a process of their own, so that they and the log
# readers (search, notices, statistics, feeds, ...) each have a core.
JOB_GROUPS: dict[str, tuple[str, ...]] = {"deliveries": ("sync_push_delivery", "watchlist_push")}


class UnknownJob(ValueError):
    pass


def select_jobs(
    settings: Settings, plugins: Sequence[Plugin], only: Sequence[str] = (), skip: Sequence[str] = ()
) -> frozenset[str]:
    """The ids of the jobs a process runs: those named in `only` (all when empty), less those
    in `skip`; a name is a job id or a group of `JOB_GROUPS`. Raises `UnknownJob`."""
    known = {job.id for job in plugin_jobs(settings, plugins)}

    def expand(names: Sequence[str]) -> set[str]:
        ids: set[str] = set()
        for name in names:
            members = JOB_GROUPS.get(name, (name,))
            unknown = [member for member in members if member not in known]
            if unknown:
                choices = ", ".join(sorted(known | JOB_GROUPS.keys()))
                raise UnknownJob(f"no job or group named {name!r} (one of: {choices})")
            ids.update(members)
        return ids

    return frozenset((expand(only) if only else known) - expand(skip))


logger = logging.getLogger("service.scheduler")


def lock_key(job_id: str) -> int:
    """The job's advisory lock: a signed 64-bit number from its id (stable across versions)."""
    return int.from_bytes(hashlib.sha256(f"registry.job.{job_id}".encode()).digest()[:8], "big", signed=True)


def run_alone(
    job_id: str, run: Callable[[Services], Awaitable[object]], spacing: float = 0
) -> Callable[[Services], Awaitable[object]]:
    """`run`, in this process only if no other process is running it now, nor started it
    less than `spacing` seconds ago (every worker schedules the job on its own clock)."""

    async def claimed(services: Services) -> object:
        if spacing <= 0:
            return await run(services)
        started = utcnow()
        claimed_here, previous = await services.db.write(_claim_run, job_id, started, spacing)
        if not claimed_here:
            logger.debug("%s ran in another process moments ago: skipped here", job_id)
            return None
        try:
            return await run(services)
        except Exception:
            # A run that failed did not do the work: give the claim back, so that another
            # worker's schedule (or this one's) runs it without waiting out the spacing.
            await services.db.write(_release_run, job_id, started, previous)
            raise

    async def elected(services: Services) -> object:
        if services.db.is_sqlite:
            with _file_lock(services.db.url, job_id) as held_here:
                if not held_here:
                    logger.debug("%s runs in another process: skipped here", job_id)
                    return None
                return await claimed(services)
        async with services.db.writer.connect() as conn:
            held = await conn.execution_options(isolation_level="AUTOCOMMIT")
            if not await held.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(job_id)}):
                logger.debug("%s runs in another process: skipped here", job_id)
                return None
            try:
                return await claimed(services)
            finally:
                await held.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(job_id)})

    return elected


def _claim_run(conn: Connection, job_id: str, now: datetime, spacing: float) -> tuple[bool, datetime | None]:
    """Record this run's start, unless another started less than `spacing` seconds ago; with
    the start it replaces (None for the first run). Called under the job's election lock, so
    no other process claims the job meanwhile."""
    last = conn.execute(select(JobRun.started_at).where(JobRun.job_id == job_id)).scalar_one_or_none()
    if last is None:
        conn.execute(insert(JobRun).values(job_id=job_id, started_at=now))
        return True, None
    if timedelta(0) <= now - last < timedelta(seconds=spacing):
        return False, last
    conn.execute(update(JobRun).where(JobRun.job_id == job_id).values(started_at=now))
    return True, last


def _release_run(conn: Connection, job_id: str, started: datetime, previous: datetime | None) -> None:
    """Put back the start `_claim_run` replaced (still under the election lock)."""
    mine = (JobRun.job_id == job_id) & (JobRun.started_at == started)
    if previous is not None:
        conn.execute(update(JobRun).where(mine).values(started_at=previous))
    else:
        conn.execute(delete(JobRun).where(mine))


def run_spacing(every: float | Mapping[str, int]) -> float:
    """How long after one worker's run another's is a repeat: half the interval (the
    schedules of two workers started apart are at most that far out of step); a daily job's
    is half a day."""
    return every / 2 if isinstance(every, int | float) else 12 * 3600.0


@contextlib.contextmanager
def _file_lock(url: str, job_id: str) -> Iterator[bool]:
    """SQLite's election: an exclusive `flock` on a file beside the database, taken without
    waiting and released with the run (or with the process): several `registry worker`
    processes may share one SQLite file once split by job (`--jobs`)."""
    path = sqlite_path(url)
    if path is None:  # an in-memory database lives in one process
        yield True
        return
    with open(path.with_name(f"{path.name}.job-{job_id}.lock"), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _database_down(exc: BaseException) -> bool:
    """The database out of reach: the exception itself, or every one of a group's."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_database_down(inner) for inner in exc.exceptions)
    return database_unavailable(exc)


def quiet_outages(
    job_id: str, run: Callable[[Services], Awaitable[object]]
) -> Callable[[Services], Awaitable[object]]:
    """`run`, whose failures while the database is out of reach are one warning line when
    the job first fails so and one when it runs again (not a traceback per run: a follower
    runs every second). Nothing is retried here: the job's next run is its next attempt."""
    failed = [0]

    async def guarded(services: Services) -> object:
        try:
            result = await run(services)
        except KeysOutOfStep:
            return None  # said once, when it began (`KeysInStep`); a restart with the keys ends it
        except Exception as exc:
            if not _database_down(exc):
                raise
            if failed[0] == 0:
                logger.warning(
                    "%s: database unavailable (%s); the job runs again at its interval",
                    job_id,
                    type(exc).__name__,
                )
            failed[0] += 1
            return None
        if failed[0]:
            logger.warning("%s: database back after %d failed runs", job_id, failed[0])
            failed[0] = 0
        return result

    return guarded


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
        # APScheduler's own lines name the job by this (else by the wrapper's function name).
        "name": job.id,
        "coalesce": True,
        "max_instances": job.max_instances,
    }
    if job.misfire_grace_seconds is not None:
        options["misfire_grace_time"] = job.misfire_grace_seconds
    if job.first_after is not None:
        options["next_run_time"] = utcnow() + timedelta(seconds=job.first_after)
    run = run_alone(job.id, job.run, run_spacing(job.every)) if job.singleton else job.run
    if job.wake_on_log:
        run = _wakeable(scheduler, job.id, run)
    run = quiet_outages(job.id, run)
    if isinstance(job.every, int | float):
        scheduler.add_job(run, "interval", seconds=job.every, **options)
    else:
        scheduler.add_job(run, "cron", timezone=CHINA_TIME, **dict(job.every), **options)
