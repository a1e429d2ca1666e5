"""The public list: its engine (a per-process resource), JSON API, web page, index jobs, CLI."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from litestar.config.app import AppConfig

from registry.settings import Settings
from registry.wiring import Job, Plugin
from search.api import PublicSearchController
from search.cli import search
from search.runtime import follow_index, reconcile_index, search_engine
from search.web.controllers import PublicPages, static_files_router, template_config


def _jobs(settings: Settings) -> Sequence[Job]:
    # APScheduler logs two INFO lines per run: four a second for the log follower.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    return [
        Job("search_follow_log", follow_index, every=settings.search.index_interval_seconds),
        Job(
            "search_reconcile",
            reconcile_index,
            every=settings.search.reconcile_interval_seconds,
            first_after=60,
        ),
    ]


def _configure(config: AppConfig, _settings: Settings) -> None:
    config.template_config = template_config()


plugin = Plugin(
    name="search",
    routes=[static_files_router()],
    public_routes=[PublicPages, PublicSearchController],
    jobs=_jobs,
    cli=[search],
    resources=[search_engine],
    configure_app=_configure,
)
