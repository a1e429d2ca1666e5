"""Statistics and oversight: the counts' log reader, the public and oversight API, the public
statistics page and the oversight dashboard, Prometheus gauges, the CLI."""

from __future__ import annotations

from collections.abc import Sequence

from publishing.statistics.cli import statistics
from publishing.statistics.controllers import (
    OversightController,
    PublicStatisticsController,
    StatisticsMetricsController,
)
from publishing.statistics.pages import OversightPages, StatisticsPages, static_router
from publishing.statistics.reader import JOB, READER
from registry.settings import Settings
from registry.wiring import Job, Plugin, follow_job


def _jobs(settings: Settings) -> Sequence[Job]:
    return [follow_job(JOB, READER, every=settings.statistics.interval_seconds)]


plugin = Plugin(
    name="statistics",
    routes=[OversightController, StatisticsMetricsController, OversightPages, static_router()],
    public_routes=[PublicStatisticsController, StatisticsPages],
    jobs=_jobs,
    cli=[statistics],
)
