"""Bearer API keys and role guards."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from registry.clients.services import authenticate
from registry.http.dependencies import provide_db
from registry.problems import Problem


def roles(*allowed: str) -> Any:
    """A guard admitting clients with one of these roles; the principal goes to request state,
    where the `principal` dependency reads it."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "unauthorized", "send Authorization: Bearer <API key>")
        principal = await provide_db(connection.app.state).read(authenticate, token.strip())
        if principal is None:
            raise Problem(401, "unauthorized", "unknown or revoked API key")
        if principal.role not in allowed:
            raise Problem(403, "forbidden_role", f"this needs one of the roles: {', '.join(allowed)}")
        connection.state.principal = principal

    return guard
