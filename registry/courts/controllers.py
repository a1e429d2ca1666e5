from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from registry.courts.services import list_courts
from registry.runtime import services_of


class CourtController(Controller):
    path = "/v1/courts"
    tags = ("courts",)

    @get("/")
    async def list_courts(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Courts and their public signing keys, so that anyone can re-verify a listing's signature."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return {"courts": await conn.run_sync(list_courts)}
