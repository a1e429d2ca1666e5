"""What a package contributes to the service, declared in its own `plugin.py`.

The composition root (`service/`) lists the plugins and assembles them: routes into the app,
jobs into the scheduler, command groups into the CLI, resources into each process's
lifespan, readiness checks into `GET /readyz`. No package imports another package's plugin,
and `registry` never imports `search` or `publishing` (ruff's banned imports enforce it in CI).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from registry.eventlog.readers import LogReader, follow

if TYPE_CHECKING:
    import click
    from litestar.config.app import AppConfig
    from litestar.datastructures import State
    from litestar.di import Provide
    from litestar.types import ASGIApp, ControllerRouterHandler

    from registry.runtime import Services
    from registry.settings import Settings


@dataclass(frozen=True)
class Job:
    """One background job. `every` is an interval in seconds, or a cron spec
    (`{"hour": 1, "minute": 0}`, China time) for daily work."""

    id: str
    run: Callable[[Services], Awaitable[object]]
    every: float | Mapping[str, int]
    # Seconds after start for the first run; None: one interval after start.
    first_after: float | None = None
    # Passes that may run at once in one process; leases keep them apart (agency push).
    max_instances: int = 1
    misfire_grace_seconds: int | None = None
    # Runs in one worker at a time across every process: the others skip that run (on
    # PostgreSQL an advisory lock elects it, `service.scheduler`; SQLite has one process).
    singleton: bool = False
    # Run at once when this process commits new log events (`registry.eventlog.wake`), not
    # only every `every` seconds: the followers a removal must reach within seconds.
    wake_on_log: bool = False


def follow_job(
    job_id: str,
    reader: LogReader,
    every: float,
    *,
    first_after: float | None = None,
    wake_on_log: bool = False,
) -> Job:
    """The job that keeps a reader of the event log caught up (`registry.eventlog.readers`)."""

    async def run(services: Services) -> int:
        return await follow(services.db, reader)

    return Job(job_id, run, every=every, first_after=first_after, wake_on_log=wake_on_log)


@dataclass(frozen=True)
class Readiness:
    """Something a web process needs in order to serve (the search engine in use): `check`
    returns when it answers and raises when it does not. `GET /readyz` runs every plugin's."""

    name: str
    check: Callable[[Services], Awaitable[object]]


# A resource lives for one process (web or worker): opened at start, closed at stop. It may
# register what it opens on `services.extensions` for routes and jobs to use.
Resource = Callable[["Services"], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Plugin:
    name: str
    # Authenticated or operational routes.
    routes: Sequence[ControllerRouterHandler] = ()
    # Routes anyone may call: mounted under the public rate limit.
    public_routes: Sequence[ControllerRouterHandler] = ()
    dependencies: Mapping[str, Provide] = field(default_factory=dict)
    jobs: Callable[[Settings], Sequence[Job]] | None = None
    cli: Sequence[click.Command] = ()
    resources: Sequence[Resource] = ()
    # What `GET /readyz` checks beside the database and the keys.
    readiness: Sequence[Readiness] = ()
    # App-level settings a package needs (template engine, exception handlers).
    configure_app: Callable[[AppConfig, Settings], None] | None = None
    # A raw ASGI route ahead of Litestar's routing, for a path whose per-request framework
    # cost matters (the bank check): given the app, its state and the settings, it returns
    # an ASGI app that answers what it takes and passes every other request on.
    front: Callable[[ASGIApp, State, Settings], ASGIApp] | None = None
