"""What handlers receive as parameters, registered app-wide by the composition root.

A handler names what it needs (`services: Injected[Services]`, `db: Injected[Database]`,
`settings: Injected[Settings]`, `secrets: Injected[Secrets]`, `principal: Injected[Principal]`)
and Litestar passes it in; no handler reaches into the app for it (litestar-fullstack's
`create_service_dependencies`). Plugins add their own the same way (`Plugin.dependencies`:
the search index).

Every provider is a synchronous attribute read, called inline (`sync_to_thread=False`), and
reads the app state itself rather than another provider: resolving a chain costs a step a
link, and the bank check and the public search are hot paths.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias, TypeVar

from litestar import Request
from litestar.datastructures import State
from litestar.di import Dependency, Provide
from litestar.params import SkipValidationMarker

from registry.clients.services import Principal
from registry.db import Database
from registry.identity.crypto import Secrets
from registry.runtime import Services
from registry.settings import Settings

T = TypeVar("T")

# Named (Litestar 3 drops dependencies inferred from a parameter's name alone) and passed on
# as is: a provider returns its type, so there is nothing to validate on each request.
Injected: TypeAlias = Annotated[T, Dependency(kind="named"), SkipValidationMarker()]


def provide_services(state: State) -> Services:
    # Set by the app's lifespan: created per process, never at import.
    services: Services = state.services
    return services


def provide_db(state: State) -> Database:
    return provide_services(state).db


def provide_settings(state: State) -> Settings:
    return provide_services(state).settings


def provide_secrets(state: State) -> Secrets:
    """The current secrets (they rotate: read on each request, not kept)."""
    return provide_services(state).secrets


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The client the `roles` guard authenticated; only guarded handlers may ask for it."""
    principal: Principal = request.state.principal
    return principal


DEPENDENCIES: dict[str, Provide] = {
    "services": Provide(provide_services, sync_to_thread=False),
    "db": Provide(provide_db, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "secrets": Provide(provide_secrets, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
}
