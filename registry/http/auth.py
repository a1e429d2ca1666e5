"""Bearer API keys and role guards."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from registry.clients.services import Principal, authenticate
from registry.problems import Problem
from registry.runtime import services_of


def roles(*allowed: str) -> Any:
    """A guard admitting clients with one of these roles; the principal goes to request state."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "unauthorized", "send Authorization: Bearer <API key>")
        db = services_of(connection.app).db
        async with db.reader.connect() as conn:
            principal = await conn.run_sync(authenticate, token.strip())
        if principal is None:
            raise Problem(401, "unauthorized", "unknown or revoked API key")
        if principal.role not in allowed:
            raise Problem(403, "forbidden_role", f"this needs one of the roles: {', '.join(allowed)}")
        connection.state.principal = principal

    return guard


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal: Principal = connection.state.principal
    return principal
