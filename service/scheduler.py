"""Background jobs (APScheduler 3): inside `registry serve` by default, or in `registry worker`.

Every plugin's jobs, on one scheduler per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from registry.calendar import CHINA_TIME
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
    if isinstance(job.every, int | float):
        scheduler.add_job(job.run, "interval", seconds=job.every, **options)
    else:
        scheduler.add_job(job.run, "cron", timezone=CHINA_TIME, **dict(job.every), **options)
