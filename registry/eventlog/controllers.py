from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy import Connection

from registry.db import Database
from registry.eventlog.readers import LogEvent, read_events
from registry.eventlog.schemas import EventPage, EventRead
from registry.eventlog.services import head
from registry.http.auth import roles
from registry.http.dependencies import Injected
from registry.http.openapi import BEARER_KEY, GUARDED, QUERY, problems
from registry.timeutil import iso

MAX_LIMIT = 1000
MAX_SEQ = 2**63 - 1  # the column is a 64-bit integer


class EventController(Controller):
    path = "/v1/events"
    tags = ("events",)

    @get("/", guards=[roles("admin")], security=BEARER_KEY, responses=problems(GUARDED, QUERY))
    async def list_events(
        self,
        db: Injected[Database],
        after: Annotated[
            int, Parameter(ge=0, le=MAX_SEQ, description="Return events with seq greater than this")
        ] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 100,
    ) -> EventPage:
        """The change log in commit order. Follow it with `after` = the last `seq` you processed."""
        return await db.read(_page, after, limit)


def _page(conn: Connection, after: int, limit: int) -> EventPage:
    events = [_event_read(event) for event in read_events(conn, after, limit)]
    last_seq, _ = head(conn)
    return EventPage(events=events, next_after=events[-1].seq if events else after, head=last_seq)


def _event_read(event: LogEvent) -> EventRead:
    return EventRead(
        seq=event.seq,
        occurred_at=iso(event.occurred_at),
        type=event.type,
        actor=event.actor,
        court_code=event.court_code,
        listing_id=event.listing_id,
        listing_version=event.listing_version,
        data=event.data,
        hash=event.hash.hex(),
    )
