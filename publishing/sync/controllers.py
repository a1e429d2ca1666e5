"""HTTP for agency sync: administration (admin role) and the agency's own feeds (agency role)."""

from __future__ import annotations

from datetime import date
from functools import partial
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.params import Parameter, QueryParameter, RequestBody
from sqlalchemy import Connection

from publishing.sync import notices
from publishing.sync import services as sync
from publishing.sync.metrics import prometheus_text
from publishing.sync.reconcile import NDJSON, drift_report, snapshot_page
from publishing.sync.schemas import (
    AckAnswer,
    AgencyNotice,
    DriftReport,
    NoticeRead,
    NoticeSummary,
    PullPage,
    StatusList,
    SubscriptionRead,
    SubscriptionStatus,
)
from publishing.sync.signing import signed_response_headers
from registry.calendar import china_date
from registry.clients.services import Principal
from registry.corrections.services import provisional_correction_deadlines
from registry.db import Database
from registry.endpoints import PushPolicy
from registry.http.auth import roles
from registry.http.body import DOCUMENT_BODY_BYTES, RequestStruct
from registry.http.dependencies import Injected
from registry.http.openapi import (
    BEARER_KEY,
    BODY,
    GUARDED,
    PARAMETER,
    PROMETHEUS_TEXT,
    QUERY,
    Codes,
    problems,
)
from registry.http.params import Id, refuse_repeated
from registry.identity.crypto import Secrets
from registry.ids import ID_PATTERN, is_id
from registry.listings.services import provisional_removal_deadlines
from registry.problems import Problem
from registry.runtime import Services
from registry.settings import Settings
from registry.timeutil import utcnow

MAX_SEQ = 2**63 - 1


class SubscriptionCreate(RequestStruct):
    client_id: str
    profile: str
    mode: str
    endpoint_url: str | None = None
    from_seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)] = 0


class Replay(RequestStruct):
    from_seq: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


class Ack(RequestStruct):
    cursor: Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]


SUBSCRIPTION: Codes = {404: "subscription_not_found"}
ENDED: Codes = {409: "subscription_ended"}
OWN_SUBSCRIPTION: Codes = {404: "subscription_not_found", 409: "wrong_mode"}
NOTICE: Codes = {404: "notice_not_found"}
# Every read of a profile's data while its subscription is paused or ended.
UNREADABLE: Codes = {409: ("subscription_paused", "subscription_ended")}


class SubscriptionAdminController(Controller):
    path = "/v1/sync/subscriptions"
    tags = ("agency sync",)
    guards = [roles("admin")]  # noqa: RUF012 - Litestar reads it as a class attribute
    request_max_body_size = DOCUMENT_BODY_BYTES  # one small document a request
    security = BEARER_KEY

    @post(
        "/",
        status_code=201,
        responses=problems(
            GUARDED,
            BODY,
            {
                404: "client_not_found",
                422: (
                    "unknown_profile",
                    "unknown_mode",
                    "endpoint_required",
                    "endpoint_not_allowed",
                    "invalid_endpoint_url",
                    "cursor_beyond_head",
                    "not_an_agency",
                ),
            },
        ),
    )
    async def create(
        self,
        data: RequestBody[SubscriptionCreate],
        services: Injected[Services],
        principal: Injected[Principal],
    ) -> SubscriptionRead:
        """Subscribe an agency client: profile, push (with an https endpoint at a public
        address) or pull, start position."""
        policy = PushPolicy.from_settings(services.settings)
        await sync.vet_endpoint(data.endpoint_url, policy)
        created = await services.db.write(
            sync.create_subscription,
            client_id=data.client_id,
            profile=data.profile,
            mode=data.mode,
            endpoint_url=data.endpoint_url,
            from_seq=data.from_seq,
            actor=principal.actor,
            now=utcnow(),
            policy=policy,
        )
        return msgspec.convert(created, SubscriptionRead)

    @get("/", responses=problems(GUARDED))
    async def list_all(self, db: Injected[Database]) -> list[SubscriptionRead]:
        return msgspec.convert(await db.read(sync.list_subscriptions), list[SubscriptionRead])

    @get("/{subscription_id:str}", responses=problems(GUARDED, PARAMETER, SUBSCRIPTION))
    async def inspect(self, db: Injected[Database], subscription_id: Id) -> SubscriptionStatus:
        """Settings, cursor, backlog, failures and delivery latency percentiles."""
        return msgspec.convert(await db.read(sync.subscription_status, subscription_id), SubscriptionStatus)

    @get("/{subscription_id:str}/drift", responses=problems(GUARDED, PARAMETER, SUBSCRIPTION))
    async def drift(self, db: Injected[Database], subscription_id: Id) -> DriftReport:
        """Listings where the agency's acknowledged state differs from the registry's."""
        return msgspec.convert(await db.read(drift_report, subscription_id, None), DriftReport)

    @post(
        "/{subscription_id:str}/pause",
        status_code=200,
        responses=problems(GUARDED, PARAMETER, SUBSCRIPTION, ENDED),
    )
    async def pause(
        self, db: Injected[Database], principal: Injected[Principal], subscription_id: Id
    ) -> SubscriptionRead:
        paused = await db.write(
            sync.set_state, subscription_id, "paused", actor=principal.actor, now=utcnow()
        )
        return msgspec.convert(paused, SubscriptionRead)

    @post(
        "/{subscription_id:str}/resume",
        status_code=200,
        responses=problems(GUARDED, PARAMETER, SUBSCRIPTION, ENDED),
    )
    async def resume(
        self, db: Injected[Database], principal: Injected[Principal], subscription_id: Id
    ) -> SubscriptionRead:
        """Active again; clears a `failing` flag and the retry count."""
        active = await db.write(
            sync.set_state, subscription_id, "active", actor=principal.actor, now=utcnow()
        )
        return msgspec.convert(active, SubscriptionRead)

    @post(
        "/{subscription_id:str}/replay",
        status_code=200,
        responses=problems(GUARDED, BODY, PARAMETER, SUBSCRIPTION, ENDED, {422: "cursor_beyond_head"}),
    )
    async def replay(
        self,
        data: RequestBody[Replay],
        db: Injected[Database],
        principal: Injected[Principal],
        subscription_id: Id,
    ) -> SubscriptionRead:
        """Deliver again everything after `from_seq`; also clears a `failing` flag."""
        replayed = await db.write(
            sync.replay, subscription_id, data.from_seq, actor=principal.actor, now=utcnow()
        )
        return msgspec.convert(replayed, SubscriptionRead)


class SyncStatusController(Controller):
    path = "/"
    tags = ("agency sync",)
    guards = [roles("admin")]  # noqa: RUF012 - Litestar reads it as a class attribute
    security = BEARER_KEY

    @get("/v1/sync/status", responses=problems(GUARDED))
    async def status(self, db: Injected[Database]) -> StatusList:
        """Every subscription: backlog, last delivered event, latency percentiles, failures."""
        return msgspec.convert({"subscriptions": await db.read(_statuses)}, StatusList)

    @get("/metrics", media_type=PROMETHEUS_TEXT, responses=problems(GUARDED))
    async def metrics(self, db: Injected[Database]) -> Response[bytes]:
        """The same figures as Prometheus text (scrape with a bearer admin key)."""
        statuses, provisional = await db.read(_metrics)
        return Response(prometheus_text(statuses, provisional), media_type=PROMETHEUS_TEXT)


def _metrics(conn: Connection) -> tuple[list[dict[str, Any]], list[date]]:
    provisional = (
        provisional_removal_deadlines(conn)
        + notices.provisional_notice_deadlines(conn)
        + provisional_correction_deadlines(conn)
    )
    return _statuses(conn), provisional


def _statuses(conn: Connection) -> list[dict[str, Any]]:
    return [sync.subscription_status(conn, s["id"]) for s in sync.list_subscriptions(conn)]


def _snapshot_cursor(request: Request[Any, Any, Any], after: str) -> None:
    """A snapshot's `after` is given once, and is empty or what `next_after` can be: a listing
    id. Anything else (`٣`, `1e400`, a typo) would read as a cursor past every listing and be
    answered an empty last page, telling the agency its copy is complete."""
    refuse_repeated(request, ("after",))
    if after and not is_id(after):
        raise Problem(
            400,
            "invalid_parameter",
            "after is a listing id: the next_after of the previous page",
            pointer="/query/after",
        )


def _snapshot(conn: Connection, *args: Any) -> bytes:
    """One page and the log position it reflects, read in one moment."""
    if conn.dialect.name != "sqlite":
        conn.execution_options(isolation_level="REPEATABLE READ")
    with conn.begin():
        return snapshot_page(conn, *args)


class AgencyFeedController(Controller):
    path = "/v1/sync/{subscription_id:str}"
    tags = ("agency sync",)
    guards = [roles("agency")]  # noqa: RUF012 - Litestar reads it as a class attribute
    request_max_body_size = DOCUMENT_BODY_BYTES  # one small document a request
    security = BEARER_KEY

    @get(
        "/events",
        responses=problems(
            GUARDED,
            QUERY,
            OWN_SUBSCRIPTION,
            {
                **UNREADABLE,
                422: ("cursor_beyond_head", "cursor_before_start"),
            },
        ),
    )
    async def events(
        self,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
        subscription_id: Id,
        after: Annotated[
            int | None, Parameter(ge=0, le=MAX_SEQ, description="Default: your acknowledged cursor")
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Log events scanned")] = 100,
    ) -> PullPage:
        """Your profile's events after `after`, in log order; then acknowledge `next_after`.
        Each event's `listing` is your profile's record of the listing."""
        today = china_date(utcnow())
        page = await db.write(
            sync.pull_events, subscription_id, principal.client_id, after, limit, secrets.keyring, today
        )
        return msgspec.convert(page, PullPage)

    @post(
        "/ack",
        status_code=200,
        responses=problems(
            GUARDED,
            BODY,
            PARAMETER,
            OWN_SUBSCRIPTION,
            {409: ("cursor_not_delivered", "cursor_behind", "cursor_conflict", "subscription_ended")},
        ),
    )
    async def ack(
        self,
        data: RequestBody[Ack],
        db: Injected[Database],
        principal: Injected[Principal],
        subscription_id: Id,
    ) -> AckAnswer:
        """You have applied everything up to `cursor` (at most the last `next_after` you were given)."""
        acked = await db.write(sync.acknowledge, subscription_id, principal.client_id, data.cursor, utcnow())
        return msgspec.convert(acked, AckAnswer)

    @get("/snapshot", media_type=NDJSON, responses=problems(GUARDED, QUERY, OWN_SUBSCRIPTION, UNREADABLE))
    async def snapshot(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        principal: Injected[Principal],
        subscription_id: Id,
        after: Annotated[
            str,
            Parameter(
                description="The `next_after` of the previous page (a listing id); none for the first",
                schema_extra={"pattern": f"^(?:{ID_PATTERN.pattern})?$"},
            ),
        ] = "",
        limit: Annotated[int, Parameter(ge=1, le=5000)] = 1000,
    ) -> Response[bytes]:
        """One signed NDJSON page of every active listing in your profile, in listing-id order.

        The first line gives the log `position` the page reflects and `next_after` (null on
        the last page). Verify each page's RFC 9421 signature with the registry's JWK Set.
        """
        _snapshot_cursor(request, after)
        body = await services.db.read(
            _snapshot,
            subscription_id,
            principal.client_id,
            after,
            limit,
            services.secrets.keyring,
            china_date(utcnow()),
        )
        headers = signed_response_headers(services.signer, 200, body, NDJSON)
        headers.pop("Content-Type")  # set, identically, by media_type
        return Response(body, media_type=NDJSON, headers=headers)

    @get("/drift", responses=problems(GUARDED, PARAMETER, OWN_SUBSCRIPTION, UNREADABLE))
    async def drift(
        self, db: Injected[Database], principal: Injected[Principal], subscription_id: Id
    ) -> DriftReport:
        """Where your acknowledged state differs from the registry's (listing ids only)."""
        return msgspec.convert(await db.read(drift_report, subscription_id, principal.client_id), DriftReport)


class Objection(RequestStruct):
    text: str


NoticeT = TypeVar("NoticeT", bound=NoticeSummary)
NoticeCursor = Annotated[
    str,
    QueryParameter(
        description="The last notice id of the previous page; none for the first",
        schema_extra={"pattern": f"^(?:{notices.NOTICE_ID.pattern})?$"},
    ),
]
PageSize = Annotated[int, QueryParameter(ge=1, le=notices.PAGE_MAX, description="Notices a page")]


def _page_cursor(request: Request[Any, Any, Any], after: str, names: tuple[str, ...]) -> None:
    refuse_repeated(request, names)
    if after and notices.NOTICE_ID.fullmatch(after) is None:
        raise Problem(
            400,
            "invalid_parameter",
            "after is a notice id from the previous page (the last one)",
            pointer="/query/after",
        )


def _paged(
    request: Request[Any, Any, Any], base: str, page: list[NoticeT], limit: int, keep: dict[str, str]
) -> Response[list[NoticeT]]:
    """The page, with an absolute link to the next when it is full (a short page is the last):
    `base` is the public base URL, which may carry a path prefix a proxy strips, as the feeds'
    links do."""
    headers = {}
    if len(page) == limit:
        query = urlencode({"after": page[-1].id, "limit": limit, **keep})
        headers["Link"] = f'<{base}{request.url.path}?{query}>; rel="next"'
    return Response(page, headers=headers)


class NoticeController(Controller):
    """The agency's assistance notices (Art. 19-21): read, print, acknowledge, object."""

    path = "/v1/notices"
    request_max_body_size = DOCUMENT_BODY_BYTES  # one small document a request
    tags = ("assistance notices",)
    security = BEARER_KEY

    @get("/", guards=[roles("agency")], responses=problems(GUARDED, QUERY))
    async def list_own(
        self,
        request: Request[Any, Any, Any],
        db: Injected[Database],
        settings: Injected[Settings],
        principal: Injected[Principal],
        after: NoticeCursor = "",
        limit: PageSize = notices.PAGE_MAX,
        wanted: Annotated[
            Literal["all", "open"],
            QueryParameter(name="state", description="`open`: only those not yet acknowledged"),
        ] = "all",
    ) -> Response[list[NoticeSummary]]:
        """Your notices in the order they were issued, up to `limit` a page; a full page has a
        `Link: <…>; rel="next"` header to the next."""
        _page_cursor(request, after, ("after", "state"))
        page = await db.read(
            partial(notices.list_notices, after=after, limit=limit, open_only=wanted == "open"),
            principal.client_id,
            utcnow(),
        )
        return _paged(
            request,
            settings.server.base_url(),
            msgspec.convert(page, list[NoticeSummary]),
            limit,
            {"state": wanted},
        )

    @get("/objections", guards=[roles("court", "admin")], responses=problems(GUARDED))
    async def objections(self, db: Injected[Database], principal: Injected[Principal]) -> list[AgencyNotice]:
        """Objections agencies filed on your court's listings (Art. 20); every court's for an admin."""
        objected = await db.read(notices.court_objections, principal.bound_court, utcnow())
        return msgspec.convert(objected, list[AgencyNotice])

    @get("/overdue", guards=[roles("admin")], responses=problems(GUARDED, QUERY))
    async def overdue(
        self,
        request: Request[Any, Any, Any],
        db: Injected[Database],
        settings: Injected[Settings],
        after: NoticeCursor = "",
        limit: PageSize = notices.PAGE_MAX,
    ) -> Response[list[AgencyNotice]]:
        """Notices unacknowledged past their deadline, the longest overdue first, for
        escalation (Art. 24); a full page has a `Link: <…>; rel="next"` header to the next."""
        _page_cursor(request, after, ("after",))
        page = await db.read(partial(notices.overdue_notices, after=after, limit=limit), utcnow())
        return _paged(
            request, settings.server.base_url(), msgspec.convert(page, list[AgencyNotice]), limit, {}
        )

    @get(
        "/{notice_id:str}",
        guards=[roles("agency")],
        responses=problems(GUARDED, PARAMETER, NOTICE, UNREADABLE),
    )
    async def read(
        self,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
        notice_id: Id,
    ) -> NoticeRead:
        return msgspec.convert(await _read_notice(db, secrets, principal, notice_id), NoticeRead)

    @get(
        "/{notice_id:str}/print",
        guards=[roles("agency")],
        media_type=MediaType.HTML,
        responses=problems(GUARDED, PARAMETER, NOTICE, UNREADABLE),
    )
    async def printable(
        self,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
        notice_id: Id,
    ) -> Response[str]:
        """The notice as a page to print and sign."""
        notice = await _read_notice(db, secrets, principal, notice_id)
        return Response(notices.render_html(notice), media_type=MediaType.HTML, headers=notices.PRINT_HEADERS)

    @post(
        "/{notice_id:str}/acknowledge",
        guards=[roles("agency")],
        status_code=200,
        responses=problems(GUARDED, PARAMETER, NOTICE),
    )
    async def acknowledge(
        self, db: Injected[Database], principal: Injected[Principal], notice_id: Id
    ) -> NoticeSummary:
        acknowledged = await db.write(
            notices.acknowledge_notice, notice_id, principal.client_id, actor=principal.actor, now=utcnow()
        )
        return msgspec.convert(acknowledged, NoticeSummary)

    @post(
        "/{notice_id:str}/objection",
        guards=[roles("agency")],
        status_code=201,
        responses=problems(
            GUARDED, BODY, PARAMETER, NOTICE, {409: "already_objected", 422: "invalid_objection"}
        ),
    )
    async def object_to(
        self,
        data: RequestBody[Objection],
        db: Injected[Database],
        principal: Injected[Principal],
        notice_id: Id,
    ) -> NoticeSummary:
        """Art. 20: the objection goes to the court; the measure stands until the court decides."""
        objected = await db.write(
            notices.object_to_notice,
            notice_id,
            principal.client_id,
            data.text,
            actor=principal.actor,
            now=utcnow(),
        )
        return msgspec.convert(objected, NoticeSummary)


async def _read_notice(
    db: Database, secrets: Secrets, principal: Principal, notice_id: str
) -> dict[str, Any]:
    now = utcnow()
    return await db.read(
        notices.read_notice, notice_id, principal.client_id, secrets.keyring, china_date(now), now
    )
