"""The composition root of the web service: `create_app()` wires everything; importing does nothing."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, MediaType, Request, get
from litestar.config.app import AppConfig
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from publishing.exports.controllers import ExportController
from publishing.feeds.controllers import FeedController, PublicationController
from publishing.sync.controllers import (
    AgencyFeedController,
    NoticeController,
    SubscriptionAdminController,
    SyncStatusController,
)
from registry.checks.controllers import CheckController, QueryLogController, WatchlistController
from registry.courts.controllers import CourtController
from registry.eventlog.controllers import EventController
from registry.identity.identifiers import warm_division_cache
from registry.listings.controllers import ListingController
from registry.problems import Problem, handle_http_exception, handle_problem, handle_unexpected
from registry.runtime import Services, services_of
from registry.scheduler import build_scheduler
from registry.settings import Settings
from registry.translog.controllers import LogController
from search.api import PublicSearchController
from search.ratelimit import public_router
from search.runtime import add_search_jobs, create_search
from search.web.controllers import PublicPages, static_files_router, template_config

access_log = logging.getLogger("registry.access")


@get("/healthz", media_type=MediaType.JSON, tags=["operations"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/.well-known/jwks.json", media_type="application/jwk-set+json", tags=["public"], sync_to_thread=False)
def jwks(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The registry's public signing keys (RFC 7517/8037): verify pushes, receipts, exports
    and checkpoints with them."""
    return services_of(request.app).signer.jwks()


def access_logging(app: ASGIApp) -> ASGIApp:
    """Method, path, status and time. Never the query string: it can carry an identifier."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        # Nothing to log (REGISTRY_LOG_LEVEL above INFO): no wrapper, no timing, no cost.
        if scope["type"] != ScopeType.HTTP or not access_log.isEnabledFor(logging.INFO):
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
            )

    return middleware


def create_app(settings: Settings | None = None, *, run_scheduler: bool | None = None) -> Litestar:
    settings = settings or Settings()
    with_scheduler = settings.scheduler if run_scheduler is None else run_scheduler

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = Services.create(settings)
        app.state.services = services
        # Every county code's lookup, once, off the event loop: a first lookup costs ~150 µs
        # of a bank check or an ingest that would otherwise pay it.
        threading.Thread(target=warm_division_cache, name="division-cache", daemon=True).start()
        app.state.search = search = create_search(services)
        scheduler = build_scheduler(services) if with_scheduler else None
        if scheduler is not None:
            add_search_jobs(scheduler, services, search)
            scheduler.start()
        # What start-up allocated (modules, tables, dictionaries) lives as long as the process:
        # out of the collector's way, a full collection walks only what requests allocate.
        gc.freeze()
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            search.close()
            await services.close()

    config = AppConfig(
        route_handlers=[
            healthz,
            jwks,
            ListingController,
            EventController,
            CourtController,
            # agency linkage sync
            SubscriptionAdminController,
            SyncStatusController,
            AgencyFeedController,
            NoticeController,
            CheckController,
            WatchlistController,
            QueryLogController,
            # Every public handler goes in here: it is what the public rate limit covers.
            public_router(
                settings.public_rate_limit,
                [
                    PublicPages,
                    PublicSearchController,
                    FeedController,
                    PublicationController,
                    ExportController,
                    LogController,
                ],
            ),
            static_files_router(),
        ],
        template_config=template_config(),
        lifespan=[lifespan],
        exception_handlers={
            Problem: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        openapi_config=OpenAPIConfig(
            title="Defaulter credit registry",
            version="0.1.0",
            description="Court-certified listings of judgment debtors who refuse to perform.",
            path="/schema",
        ),
        middleware=[access_logging],
        request_max_body_size=settings.request_max_body_bytes,
        debug=False,
    )
    return Litestar.from_config(config)


def app_factory() -> Any:
    """For `uvicorn --factory registry.app:app_factory`."""
    return create_app()
