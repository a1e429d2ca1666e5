"""HTTP for agency sync: administration (admin role) and the agency's own feeds (agency role)."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, Parameter
from prometheus_client import CONTENT_TYPE_LATEST

from publishing.sync import notices
from publishing.sync import services as sync
from publishing.sync.metrics import prometheus_text
from publishing.sync.reconcile import NDJSON, drift_report, snapshot_page
from publishing.sync.signing import signed_response_headers
from registry.calendar import china_date
from registry.http.auth import principal_of, roles
from registry.problems import Problem
from registry.runtime import services_of
from registry.timeutil import utcnow

MAX_SEQ = 2**63 - 1
T = TypeVar("T")


class SubscriptionCreate(msgspec.Struct, forbid_unknown_fields=True):
    client_id: str
    profile: str
    mode: str
    endpoint_url: str | None = None
    from_seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)] = 0


class Replay(msgspec.Struct, forbid_unknown_fields=True):
    from_seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class Ack(msgspec.Struct, forbid_unknown_fields=True):
    cursor: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


def decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise Problem(422, "invalid_field", str(exc)) from exc
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Problem(400, "invalid_json", "the body is not valid JSON (or is nested too deep)") from exc


class SubscriptionAdminController(Controller):
    path = "/v1/sync/subscriptions"
    tags = ("agency sync",)
    guards = [roles("admin")]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Subscribe an agency client: profile, push (with an https endpoint) or pull, start position."""
        body = decode(await request.body(), SubscriptionCreate)
        services = services_of(request.app)
        actor = principal_of(request).actor
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(
                lambda c: sync.create_subscription(
                    c,
                    client_id=body.client_id,
                    profile=body.profile,
                    mode=body.mode,
                    endpoint_url=body.endpoint_url,
                    from_seq=body.from_seq,
                    actor=actor,
                    now=utcnow(),
                )
            )

    @get("/")
    async def list_all(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(sync.list_subscriptions)

    @get("/{subscription_id:str}")
    async def inspect(
        self, request: Request[Any, Any, Any], subscription_id: FromPath[str]
    ) -> dict[str, Any]:
        """Settings, cursor, backlog, failures and delivery latency percentiles."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(sync.subscription_status, subscription_id)

    @get("/{subscription_id:str}/drift")
    async def drift(self, request: Request[Any, Any, Any], subscription_id: FromPath[str]) -> dict[str, Any]:
        """Listings where the agency's acknowledged state differs from the registry's."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(drift_report, subscription_id, None)

    @post("/{subscription_id:str}/pause", status_code=200)
    async def pause(self, request: Request[Any, Any, Any], subscription_id: FromPath[str]) -> dict[str, Any]:
        return await self._set_state(request, subscription_id, "paused")

    @post("/{subscription_id:str}/resume", status_code=200)
    async def resume(self, request: Request[Any, Any, Any], subscription_id: FromPath[str]) -> dict[str, Any]:
        """Active again; clears a `failing` flag and the retry count."""
        return await self._set_state(request, subscription_id, "active")

    async def _set_state(self, request: Request[Any, Any, Any], sub_id: str, state: str) -> dict[str, Any]:
        services = services_of(request.app)
        actor = principal_of(request).actor
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(lambda c: sync.set_state(c, sub_id, state, actor=actor, now=utcnow()))

    @post("/{subscription_id:str}/replay", status_code=200)
    async def replay(self, request: Request[Any, Any, Any], subscription_id: FromPath[str]) -> dict[str, Any]:
        """Deliver again everything after `from_seq`; also clears a `failing` flag."""
        body = decode(await request.body(), Replay)
        services = services_of(request.app)
        actor = principal_of(request).actor
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(
                lambda c: sync.replay(c, subscription_id, body.from_seq, actor=actor, now=utcnow())
            )


class SyncStatusController(Controller):
    path = "/"
    tags = ("agency sync",)
    guards = [roles("admin")]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/v1/sync/status")
    async def status(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Every subscription: backlog, last delivered event, latency percentiles, failures."""
        return {"subscriptions": await _statuses(request)}

    @get("/metrics", media_type=CONTENT_TYPE_LATEST)
    async def metrics(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        """The same figures as Prometheus text (scrape with a bearer admin key)."""
        return Response(prometheus_text(await _statuses(request)), media_type=CONTENT_TYPE_LATEST)


async def _statuses(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    services = services_of(request.app)

    def read(conn: Any) -> list[dict[str, Any]]:
        return [sync.subscription_status(conn, s["id"]) for s in sync.list_subscriptions(conn)]

    async with services.db.reader.connect() as conn:
        return await conn.run_sync(read)


class AgencyFeedController(Controller):
    path = "/v1/sync/{subscription_id:str}"
    tags = ("agency sync",)
    guards = [roles("agency")]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/events")
    async def events(
        self,
        request: Request[Any, Any, Any],
        subscription_id: FromPath[str],
        after: Annotated[
            int | None, Parameter(ge=0, le=MAX_SEQ, description="Default: your acknowledged cursor")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Log events scanned")] = 100,
    ) -> dict[str, Any]:
        """Your profile's events after `after`, in log order; then acknowledge `next_after`."""
        services = services_of(request.app)
        client_id = principal_of(request).client_id
        keyring = services.secrets.keyring
        today = china_date(utcnow())
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(
                lambda c: sync.pull_events(c, subscription_id, client_id, after, limit, keyring, today)
            )

    @post("/ack", status_code=200)
    async def ack(self, request: Request[Any, Any, Any], subscription_id: FromPath[str]) -> dict[str, Any]:
        """You have applied everything up to `cursor` (at most the last `next_after` you were given)."""
        body = decode(await request.body(), Ack)
        services = services_of(request.app)
        client_id = principal_of(request).client_id
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(
                lambda c: sync.acknowledge(c, subscription_id, client_id, body.cursor, utcnow())
            )

    @get("/snapshot", media_type=NDJSON)
    async def snapshot(
        self,
        request: Request[Any, Any, Any],
        subscription_id: FromPath[str],
        after: Annotated[
            str, Parameter(max_length=32, description="The last listing id of the previous page")
        ] = "",
        limit: Annotated[int, Parameter(ge=1, le=5000)] = 1000,
    ) -> Response[bytes]:
        """One signed NDJSON page of every active listing in your profile, in listing-id order.

        The first line gives the log `position` the page reflects and `next_after` (null on
        the last page). Verify each page's RFC 9421 signature with the registry's JWK Set.
        """
        services = services_of(request.app)
        client_id = principal_of(request).client_id
        keyring = services.secrets.keyring
        today = china_date(utcnow())
        async with services.db.reader.connect() as conn:
            if not services.db.is_sqlite:
                # The listings and the log position must be one moment.
                await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                body = await conn.run_sync(
                    snapshot_page, subscription_id, client_id, after, limit, keyring, today
                )
        headers = signed_response_headers(services.signer, 200, body, NDJSON)
        headers.pop("Content-Type")  # set, identically, by media_type
        return Response(body, media_type=NDJSON, headers=headers)

    @get("/drift")
    async def drift(self, request: Request[Any, Any, Any], subscription_id: FromPath[str]) -> dict[str, Any]:
        """Where your acknowledged state differs from the registry's (listing ids only)."""
        services = services_of(request.app)
        client_id = principal_of(request).client_id
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(drift_report, subscription_id, client_id)


class Objection(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class NoticeController(Controller):
    """The agency's assistance notices (Art. 19-21): read, print, acknowledge, object."""

    path = "/v1/notices"
    tags = ("assistance notices",)

    @get("/", guards=[roles("agency")])
    async def list_own(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        services = services_of(request.app)
        client_id = principal_of(request).client_id
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(notices.list_notices, client_id, utcnow())

    @get("/objections", guards=[roles("court", "admin")])
    async def objections(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        """Objections agencies filed on your court's listings (Art. 20); every court's for an admin."""
        services = services_of(request.app)
        court = principal_of(request).bound_court
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(notices.court_objections, court, utcnow())

    @get("/overdue", guards=[roles("admin")])
    async def overdue(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        """Notices unacknowledged past their deadline, for escalation (Art. 24)."""
        services = services_of(request.app)
        async with services.db.reader.connect() as conn:
            return await conn.run_sync(notices.overdue_notices, utcnow())

    @get("/{notice_id:str}", guards=[roles("agency")])
    async def read(self, request: Request[Any, Any, Any], notice_id: FromPath[str]) -> dict[str, Any]:
        return await _read_notice(request, notice_id)

    @get("/{notice_id:str}/print", guards=[roles("agency")], media_type="text/html")
    async def printable(self, request: Request[Any, Any, Any], notice_id: FromPath[str]) -> Response[str]:
        return Response(notices.render_html(await _read_notice(request, notice_id)), media_type="text/html")

    @post("/{notice_id:str}/acknowledge", guards=[roles("agency")], status_code=200)
    async def acknowledge(self, request: Request[Any, Any, Any], notice_id: FromPath[str]) -> dict[str, Any]:
        services = services_of(request.app)
        principal = principal_of(request)
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(
                lambda c: notices.acknowledge_notice(
                    c, notice_id, principal.client_id, actor=principal.actor, now=utcnow()
                )
            )

    @post("/{notice_id:str}/objection", guards=[roles("agency")], status_code=201)
    async def object_to(self, request: Request[Any, Any, Any], notice_id: FromPath[str]) -> dict[str, Any]:
        """Art. 20: the objection goes to the court; the measure stands until the court decides."""
        body = decode(await request.body(), Objection)
        services = services_of(request.app)
        principal = principal_of(request)
        async with services.db.writer.begin() as conn:
            return await conn.run_sync(
                lambda c: notices.object_to_notice(
                    c, notice_id, principal.client_id, body.text, actor=principal.actor, now=utcnow()
                )
            )


async def _read_notice(request: Request[Any, Any, Any], notice_id: str) -> dict[str, Any]:
    services = services_of(request.app)
    client_id = principal_of(request).client_id
    keyring = services.secrets.keyring
    now = utcnow()
    async with services.db.reader.connect() as conn:
        return await conn.run_sync(notices.read_notice, notice_id, client_id, keyring, china_date(now), now)
