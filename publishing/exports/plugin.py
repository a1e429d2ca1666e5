"""Signed daily exports: the public download routes, the daily job, `registry export run`."""

from __future__ import annotations

from collections.abc import Sequence

from publishing.exports.cli import export
from publishing.exports.controllers import ExportController
from publishing.exports.jobs import daily_export
from registry.settings import Settings
from registry.wiring import Job, Plugin


def _jobs(settings: Settings) -> Sequence[Job]:
    # A busy or restarted worker still writes the day's export within six hours.
    return [
        Job(
            "daily_export",
            daily_export,
            every={"hour": settings.exports.hour, "minute": 0},
            misfire_grace_seconds=6 * 3600,
            singleton=True,
        )
    ]


plugin = Plugin(name="exports", public_routes=[ExportController], jobs=_jobs, cli=[export])
