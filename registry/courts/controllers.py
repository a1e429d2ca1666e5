from __future__ import annotations

import msgspec
from litestar import Controller, get

from registry.courts.schemas import CourtList
from registry.courts.services import list_courts
from registry.db import Database
from registry.http.dependencies import Injected


class CourtController(Controller):
    path = "/v1/courts"
    tags = ("courts",)

    @get("/")
    async def list_courts(self, db: Injected[Database]) -> CourtList:
        """Courts and their public signing keys, so that anyone can re-verify a listing's signature."""
        return msgspec.convert({"courts": await db.read(list_courts)}, CourtList)
