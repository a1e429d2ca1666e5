from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from registry.eventlog.readers import LogEvent, read_events
from registry.eventlog.services import head
from registry.http.auth import roles
from registry.runtime import services_of
from registry.timeutil import iso

MAX_LIMIT = 1000
MAX_SEQ = 2**63 - 1  # the column is a 64-bit integer


class EventController(Controller):
    path = "/v1/events"
    tags = ("events",)

    @get("/", guards=[roles("admin")])
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        after: Annotated[
            int, Parameter(ge=0, le=MAX_SEQ, description="Return events with seq greater than this")
        ] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 100,
    ) -> dict[str, Any]:
        """The change log in commit order. Follow it with `after` = the last `seq` you processed."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            events = await conn.run_sync(read_events, after, limit)
            last_seq, _ = await conn.run_sync(head)
        return {
            "events": [_event_json(event) for event in events],
            "next_after": events[-1].seq if events else after,
            "head": last_seq,
        }


def _event_json(event: LogEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "occurred_at": iso(event.occurred_at),
        "type": event.type,
        "actor": event.actor,
        "court_code": event.court_code,
        "listing_id": event.listing_id,
        "listing_version": event.listing_version,
        "data": event.data,
        "hash": event.hash.hex(),
    }
