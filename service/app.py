"""The web service: `create_app()` assembles the plugins; importing does nothing."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import msgspec
from litestar import Litestar, MediaType, Response, get
from litestar.config.app import AppConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from registry.http.body import BodyPlugin
from registry.http.dependencies import DEPENDENCIES, provide_services
from registry.http.errors import handle_http_exception, handle_problem, handle_unexpected
from registry.http.params import strict_query_integers
from registry.http.ratelimit import public_router
from registry.identity.identifiers import warm_division_cache
from registry.logs import printable, request_ids, without_numbers
from registry.problems import Problem
from registry.runtime import Services
from registry.settings import Settings
from registry.wiring import Plugin
from service.docs import assets_router, openapi_config
from service.plugins import PLUGINS
from service.scheduler import build_scheduler

access_log = logging.getLogger("registry.access")


class Health(msgspec.Struct):
    status: str  # "ok" while the process serves


@get("/healthz", media_type=MediaType.JSON, tags=["operations"], sync_to_thread=False)
def healthz() -> Health:
    return Health("ok")


# The shared limit store's readiness check: shown, never making the process unready.
SHARED_LIMITS = "shared_limits"
SHARED_LIMITS_PROBE_SECONDS = 0.5


class Readiness(msgspec.Struct):
    status: str  # "ready", or "not_ready" (503)
    # Each check: "ok", or why it is not ready (the database, each plugin's, e.g. "search").
    checks: dict[str, str]


def readiness_endpoint(plugins: Sequence[Plugin]) -> Any:
    @get(
        "/readyz",
        media_type=MediaType.JSON,
        tags=["operations"],
        responses={
            503: ResponseSpec(
                data_container=Readiness,
                description="Not ready: `checks` says what is down",
                generate_examples=False,
            )
        },
    )
    async def readyz(state: State) -> Response[Readiness]:
        """Whether this process can serve now: the database and what each part depends on
        (the search engine). For load balancers and process supervisors."""
        services = provide_services(state)
        checks: dict[str, str] = {}
        try:
            await services.db.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
            checks["database"] = "ok"
        except Exception as exc:  # any failure means not ready; the reason is its type only
            checks["database"] = f"unavailable ({type(exc).__name__})"
        # Keys a rotation left behind: every check and write would be refused (`KeysInStep`).
        keys_reason = services.secrets_source.out_of_step()
        checks["keys"] = (
            "ok" if keys_reason is None else "out of step with the stored data: restart with the new keys"
        )
        if services.limits.shared:
            # Reported, not required: while the store is down each process counts its limits
            # alone (docs/operations.md), and taking every web process out would be worse.
            try:
                # Bounded below any probe's timeout, whatever the store's own timeout.
                await asyncio.wait_for(services.limits.ping(), SHARED_LIMITS_PROBE_SECONDS)
                checks[SHARED_LIMITS] = "ok"
            except Exception as exc:  # the operator's reason: the type only
                checks[SHARED_LIMITS] = f"unavailable ({type(exc).__name__}): limits counted per process"
        for plugin in plugins:
            for check in plugin.readiness:
                try:
                    await check.check(services)
                    checks[check.name] = "ok"
                except Exception as exc:  # not ready; the log and the answer name the type only
                    checks[check.name] = f"failed ({type(exc).__name__})"
        ready = all(value == "ok" for name, value in checks.items() if name != SHARED_LIMITS)
        status = "ready" if ready else "not_ready"
        return Response(Readiness(status, checks), status_code=200 if ready else 503)

    return readyz


def access_logging(app: ASGIApp) -> ASGIApp:
    """Method, path, status and time, for every request, those that match no route too. Never
    the query string: it can carry an identifier; nor a number in the path (a client may put
    an ID number there: `registry.logs.without_numbers`). The path is the decoded one, escaped
    (`registry.logs.printable`): a `%0a` in it cannot start a forged line."""

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
                printable(scope["method"]),
                printable(without_numbers(scope["path"])),
                status,
                (time.perf_counter() - started) * 1000,
            )

    return middleware


def forwarded_headers(trusted: Sequence[str]) -> Any:
    """X-Forwarded-For and X-Forwarded-Proto believed only from the proxies an operator names
    (REGISTRY_FORWARDED_ALLOW_IPS; none by default), so that nobody else can choose the address
    the public rate limit counts them under. The client is the right-most address a trusted
    proxy did not add (uvicorn's `ProxyHeadersMiddleware`). The server itself must not
    rewrite the peer: `registry serve` starts uvicorn with `proxy_headers=False`."""

    def middleware(app: ASGIApp) -> ASGIApp:
        if not trusted:
            return app
        return cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=list(trusted)))

    return middleware


def head_as_get(app: ASGIApp) -> ASGIApp:
    """HEAD wherever GET is (RFC 9110 §9.3.2): the GET handler answers, its status and headers
    go out, its body does not. Where there is no GET, the 404 or the 405 (with `Allow`)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] != "HEAD":
            await app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await app({**scope, "method": "GET"}, receive, headers_only)

    return middleware


def no_store_when_authenticated(app: ASGIApp) -> ASGIApp:
    """`Cache-Control: no-store` on every answer to a request that carries credentials: what
    a court, a bank, an agency or an admin reads (full identifiers, query logs, notices) is
    kept by no cache, shared or private (RFC 9111 §5.2.2.5), whatever the handler said."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not any(
            name == b"authorization" for name, _ in scope["headers"]
        ):
            await app(scope, receive, send)
            return

        async def no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders(message)
                headers["Cache-Control"] = "no-store"
                headers.extend_header_value("Vary", "Authorization")
            await send(message)

        await app(scope, receive, no_store)

    return middleware


@asynccontextmanager
async def process_resources(services: Services, plugins: Sequence[Plugin]) -> AsyncIterator[None]:
    """Every plugin's per-process resources, opened in order and closed in reverse.

    Every county code's lookup is warmed once, off the event loop, in the web and the worker
    alike: a first lookup costs ~150 µs of a bank check or an ingest, ~0.7 ms of an agency
    record rendered for a new division code."""
    threading.Thread(target=warm_division_cache, name="division-cache", daemon=True).start()
    async with AsyncExitStack() as stack:
        for plugin in plugins:
            for resource in plugin.resources:
                await stack.enter_async_context(resource(services))
        yield


def create_app(
    settings: Settings | None = None,
    *,
    run_scheduler: bool | None = None,
    plugins: Sequence[Plugin] = PLUGINS,
) -> Litestar:
    settings = settings or Settings()
    with_scheduler = settings.server.scheduler if run_scheduler is None else run_scheduler

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = Services.create(settings)
        app.state.services = services
        try:
            async with process_resources(services, plugins):
                scheduler = build_scheduler(services, plugins) if with_scheduler else None
                if scheduler is not None:
                    scheduler.start()
                # What start-up allocated (modules, tables, dictionaries) lives as long as the
                # process: out of the collector's way, a full collection walks only what
                # requests allocate.
                gc.freeze()
                try:
                    yield
                finally:
                    if scheduler is not None:
                        scheduler.shutdown(wait=False)
        finally:
            await services.close()

    routes: list[ControllerRouterHandler] = [healthz, readiness_endpoint(plugins), assets_router()]
    public: list[ControllerRouterHandler] = []
    dependencies: dict[str, Any] = dict(DEPENDENCIES)
    for plugin in plugins:
        routes.extend(plugin.routes)
        public.extend(plugin.public_routes)
        dependencies.update(plugin.dependencies)
    # Every public handler goes under one router: it is what the public rate limit covers.
    routes.append(public_router(settings.server.public_rate_limit, public))
    config = AppConfig(
        route_handlers=routes,
        dependencies=dependencies,
        lifespan=[lifespan],
        exception_handlers={
            Problem: handle_problem,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
        openapi_config=openapi_config(),
        plugins=[BodyPlugin()],
        # Integer query parameters in ASCII digits only (Litestar reads `1e3` and `١٠` too).
        before_request=strict_query_integers,
        request_max_body_size=settings.server.request_max_body_bytes,
        debug=False,
    )
    for plugin in plugins:
        if plugin.configure_app is not None:
            plugin.configure_app(config, settings)
    app = Litestar.from_config(config)
    handler = app.asgi_handler
    for plugin in plugins:
        if plugin.front is not None:
            handler = plugin.front(handler, app.state, settings)
    # Around the whole app, not each route (Litestar's `middleware`), so that a request that
    # matches no route (404, 405) is logged with its id too. Outermost the proxy's client
    # (what the limits count); then the request id: the access line and every other carry it.
    # Innermost the plugins' fronts (the bank check's raw route), so they get all of these too.
    app.asgi_handler = forwarded_headers(settings.server.trusted_proxies())(
        request_ids(access_logging(head_as_get(no_store_when_authenticated(handler))))
    )
    return app


def app_factory() -> Any:
    """For `uvicorn --factory --no-proxy-headers service.app:app_factory` (the app believes
    forwarded headers from REGISTRY_FORWARDED_ALLOW_IPS only; uvicorn's default would rewrite
    the client first)."""
    return create_app()
