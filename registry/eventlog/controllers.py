from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy import Connection

from registry.db import Database
from registry.eventlog.services import head, read_events
from registry.http.auth import roles
from registry.http.dependencies import Injected

MAX_LIMIT = 1000
MAX_SEQ = 2**63 - 1  # the column is a 64-bit integer


class EventController(Controller):
    path = "/v1/events"
    tags = ("events",)

    @get("/", guards=[roles("admin")])
    async def list_events(
        self,
        db: Injected[Database],
        after: Annotated[
            int, Parameter(ge=0, le=MAX_SEQ, description="Return events with seq greater than this")
        ] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 100,
    ) -> dict[str, Any]:
        """The change log in commit order. Follow it with `after` = the last `seq` you processed."""
        return await db.read(_page, after, limit)


def _page(conn: Connection, after: int, limit: int) -> dict[str, Any]:
    events = read_events(conn, after, limit)
    last_seq, _ = head(conn)
    return {"events": events, "next_after": events[-1]["seq"] if events else after, "head": last_seq}
