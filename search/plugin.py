"""The public list: its engine (a per-process resource), JSON API, web page, index jobs, CLI."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide

from registry.http.dependencies import provide_services
from registry.settings import Settings
from registry.wiring import Job, Plugin, Readiness
from search.api import PublicSearchController
from search.cli import search
from search.interface import SearchIndex
from search.meili import RESTORE_JOB
from search.recent import JOB as RECENT_INDEX_JOB
from search.runtime import (
    FOLLOW_JOB,
    engine_answers,
    engine_of,
    follow_index,
    maintain_recent_index,
    reconcile_index,
    restore_index,
    search_engine,
)
from search.web.controllers import PublicPages, static_files_router, template_config
from search.web.corrections import CorrectionPages

# How often the worker checks that the Meilisearch index is still the one it built.
RESTORE_SECONDS = 15


def _jobs(settings: Settings) -> Sequence[Job]:
    # APScheduler logs two INFO lines per run: four a second for the log follower.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    return [
        Job(
            FOLLOW_JOB,
            follow_index,
            every=settings.search.index_interval_seconds,
            wake_on_log=True,
        ),
        Job(
            "search_reconcile",
            reconcile_index,
            every=settings.search.reconcile_interval_seconds,
            first_after=60,
            singleton=True,
        ),
        # Building a pair took 28.6 s at 5,000,000 listings (docs/benchmarks.md); due every few weeks.
        Job(RECENT_INDEX_JOB, maintain_recent_index, every=3600, first_after=30, singleton=True),
        *_restore_job(settings),
    ]


def _restore_job(settings: Settings) -> list[Job]:
    """Meilisearch only: a lost index is seen within RESTORE_SECONDS (one `GET /indexes/{uid}`
    a run) and rebuilt. Its election is held for the whole rebuild (one at a time across
    processes); a second instance started meanwhile in the same process loses the election
    and returns at once, where the scheduler would log a skipped run every interval."""
    if settings.search.backend != "meilisearch":
        return []
    return [
        Job(RESTORE_JOB, restore_index, every=RESTORE_SECONDS, first_after=5, singleton=True, max_instances=2)
    ]


def provide_search_index(state: State) -> SearchIndex:
    """The engine this process opened (`search_engine`), for the public API and web page."""
    return engine_of(provide_services(state))


def _configure(config: AppConfig, _settings: Settings) -> None:
    config.template_config = template_config()


plugin = Plugin(
    name="search",
    routes=[static_files_router()],
    public_routes=[PublicPages, CorrectionPages, PublicSearchController],
    dependencies={"search_index": Provide(provide_search_index, sync_to_thread=False)},
    jobs=_jobs,
    cli=[search],
    resources=[search_engine],
    readiness=[Readiness("search", engine_answers)],
    configure_app=_configure,
)
