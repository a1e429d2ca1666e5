"""HTTP: bank checks, receipt verification, watchlists, the admin query-log export."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, HttpMethod, Request, get, post, put
from litestar.connection import ASGIConnection
from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import PathParameter, QueryParameter, RequestBody
from litestar.response import Stream

from registry.checks.handling import admit_bank, check_answer
from registry.checks.querylog import csv_lines, export_page, is_bank
from registry.checks.receipts import covered_index
from registry.checks.schemas import (
    PURPOSES,
    CheckAnswer,
    CheckRequest,
    EndpointAnswer,
    EndpointRequest,
    VerifyAnswer,
    VerifyRequest,
    WatchChanges,
    WatchlistSummary,
    WatchRequest,
    WatchResults,
)
from registry.checks.services import (
    verify_subject,
)
from registry.checks.watchlist import (
    add_subjects,
    check_endpoint,
    list_changes,
    parse_watch_subjects,
    remove_subjects,
    set_endpoint,
    summary,
)
from registry.clients.services import Principal
from registry.csvsafe import MEDIA_TYPE as CSV
from registry.db import Database
from registry.endpoints import PushPolicy
from registry.http.auth import roles
from registry.http.body import DOCUMENT_BODY_BYTES, KIB
from registry.http.dependencies import Injected, provide_services
from registry.http.openapi import BEARER_KEY, BODY, GUARDED, PARAMETER, QUERY, media_types, problems
from registry.http.params import refuse_repeated
from registry.problems import Problem
from registry.runtime import Services
from registry.settings import Settings
from registry.text import IDENTIFIER_PATTERN
from registry.timeutil import utcnow

MAX_SEQ = 2**63 - 1
EXPORT_PAGE = 5000
NDJSON = "application/x-ndjson"

# Body caps (registry.http.body): what the largest legitimate request needs. A subject is
# three short fields (~60 bytes; 1 KiB leaves room for long names and `\uXXXX` escapes),
# a watched subject two; a receipt names each subject of its check in ~130 bytes.
CHECK_BODY_BYTES = 1000 * KIB + 4 * KIB  # REGISTRY_CHECK_BATCH_MAX_SUBJECTS <= 1,000
WATCH_BODY_BYTES = 10_000 * 512 + 4 * KIB  # REGISTRY_WATCHLIST_MAX_SUBJECTS <= 10,000
VERIFY_BODY_BYTES = 1024 * KIB  # the receipt of a full check, with room for several listings a subject


async def bank_key(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """The bank, from its key, and its rate, before a byte of the body is read: a request
    without a valid bank key is refused 401/403 (a throttled one 429) and its body is never
    taken in (`registry.checks.handling.admit_bank`)."""
    services = provide_services(connection.app.state)
    connection.state.bank = await admit_bank(services, connection.headers.get("authorization", ""))


class GuardedRoute(HTTPRouteHandler):
    """A route whose guards get the handler itself: Litestar hands each guard a shallow copy
    of the handler, ~3% of a single check's time on the server, and `bank_key` does not
    look at it."""

    async def authorize_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        for guard in self.resolve_guards():
            await guard(connection, self)  # type: ignore[misc]  # resolve_guards made each one async


class CheckController(Controller):
    path = "/v1/checks"
    tags = ("bank checks",)

    @GuardedRoute(
        "/",
        http_method=HttpMethod.POST,
        status_code=200,
        guards=[bank_key],
        request_max_body_size=CHECK_BODY_BYTES,
        security=BEARER_KEY,
        responses=problems(
            BODY,
            GUARDED,
            {
                413: "batch_too_large",
                422: ("unknown_purpose", "no_subjects"),
                429: ("rate_limited", "daily_quota_exceeded"),
            },
        ),
    )
    async def check(
        self, request: Request[Any, Any, Any], data: RequestBody[CheckRequest], services: Injected[Services]
    ) -> CheckAnswer:
        """Check up to 1,000 subjects before lending (Art. 14). Role `bank`. Each answer
        carries a signed receipt; every subject is logged (hashed) before the answer leaves."""
        # The raw ASGI front (registry.checks.front) answers most checks before Litestar
        # routes them; this route takes the rest, with the same code.
        return await check_answer(services, request.state.bank, data)

    @get("/purposes", sync_to_thread=False)
    def purposes(self) -> dict[str, str]:
        """The purposes a check may name, each with what it is for."""
        return PURPOSES


class ReceiptController(Controller):
    """Public, so under the public rate budget (registered as a public route) with a small body cap."""

    path = "/v1/checks"
    tags = ("bank checks",)

    @post(
        "/verify",
        status_code=200,
        request_max_body_size=VERIFY_BODY_BYTES,
        responses=problems(BODY, {429: "rate_limited"}),
    )
    async def verify(self, data: RequestBody[VerifyRequest], services: Injected[Services]) -> VerifyAnswer:
        """Public: is this receipt genuine? `reason` is `genuine`, `malformed`,
        `unsupported_algorithm`, `unknown_kid`, `bad_signature`, `altered` or `not_a_receipt`.
        With `subject` and `nonce` (from the check's answer), also whether the receipt
        covers that borrower (`subject_covered`, `subject_index`)."""
        subject = verify_subject(data, services.secrets.blind_index)
        verdict = services.checks.receipts.verify(data.receipt).to_dict()
        if subject is not None:
            kind, identifier, name, nonce = subject
            claims = verdict.get("claims")
            index = None if claims is None else covered_index(claims, kind, identifier, name, nonce)
            verdict["subject_covered"] = index is not None
            if index is not None:
                verdict["subject_index"] = index
        return msgspec.convert(verdict, VerifyAnswer)


class WatchlistController(Controller):
    path = "/v1/watchlist"
    tags = ("bank checks",)
    guards = [roles("bank")]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER_KEY

    @get("/", responses=problems(GUARDED))
    async def show(self, db: Injected[Database], principal: Injected[Principal]) -> WatchlistSummary:
        """How many subjects this bank watches, its push endpoint and how pushes to it fare."""
        return msgspec.convert(await db.read(summary, principal.client_id), WatchlistSummary)

    @post(
        "/subjects",
        status_code=200,
        request_max_body_size=WATCH_BODY_BYTES,
        responses=problems(GUARDED, BODY, {413: "batch_too_large", 422: "no_subjects"}),
    )
    async def add(
        self, data: RequestBody[WatchRequest], services: Injected[Services], principal: Injected[Principal]
    ) -> WatchResults:
        """Watch borrowers: full identifiers in, blind-index values stored, nothing else. A subject
        whose identifier does not parse gets its `error` (as in a check); the rest are watched."""
        return await self._change(data, services, principal, add=True)

    @post(
        "/subjects/remove",
        status_code=200,
        request_max_body_size=WATCH_BODY_BYTES,
        responses=problems(GUARDED, BODY, {413: "batch_too_large", 422: "no_subjects"}),
    )
    async def remove(
        self, data: RequestBody[WatchRequest], services: Injected[Services], principal: Injected[Principal]
    ) -> WatchResults:
        """Stop watching borrowers."""
        return await self._change(data, services, principal, add=False)

    async def _change(
        self, body: WatchRequest, services: Services, principal: Principal, *, add: bool
    ) -> WatchResults:
        limit = services.settings.checks.watchlist_max_subjects
        if not body.subjects:
            raise Problem(422, "no_subjects", "send at least one subject", pointer="/subjects")
        if len(body.subjects) > limit:
            raise Problem(
                413, "batch_too_large", f"at most {limit} subjects a request", extra={"limit": limit}
            )
        secrets = services.secrets
        subjects = parse_watch_subjects(body.subjects, secrets.blind_index, secrets.keyring)
        if add:
            results = await services.db.write(add_subjects, principal.client_id, subjects, utcnow())
        else:
            results = await services.db.write(remove_subjects, principal.client_id, subjects)
        return msgspec.convert({"results": results}, WatchResults)

    @put(
        "/endpoint",
        status_code=200,
        request_max_body_size=DOCUMENT_BODY_BYTES,
        responses=problems(GUARDED, BODY, {422: "invalid_endpoint"}),
    )
    async def endpoint(
        self, data: RequestBody[EndpointRequest], services: Injected[Services], principal: Injected[Principal]
    ) -> EndpointAnswer:
        """Where changes may be pushed (https to a public address; null removes it). Delivery
        is the push service's."""
        endpoint = await check_endpoint(data.endpoint, PushPolicy.from_settings(services.settings))
        await services.db.write(set_endpoint, principal.client_id, endpoint, utcnow())
        return EndpointAnswer(endpoint)

    @get("/changes", responses=problems(GUARDED, QUERY, {422: "cursor_beyond_head"}))
    async def changes(
        self,
        db: Injected[Database],
        principal: Injected[Principal],
        after: Annotated[
            int, QueryParameter(ge=0, le=MAX_SEQ, description="The last `seq` you processed")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> WatchChanges:
        """Changes to watched subjects in log order; pass `next_after` back as `after`."""
        return msgspec.convert(await db.read(list_changes, principal.client_id, after, limit), WatchChanges)


_TEXT = Schema(type=OpenAPIType.STRING)


def _instant_parameter(name: str, description: str) -> Any:
    return QueryParameter(
        name=name,
        description=f"{description}. RFC 3339 with its zone, e.g. 2026-01-01T00:00:00+08:00",
        schema_extra={"one_of": None, "type": "string", "format": "date-time"},
    )


def _instant(raw: str | None, name: str) -> datetime | None:
    """The time `raw` names, in UTC, or 400 `invalid_parameter` before the export streams
    (a refusal after its first line would only cut the connection)."""
    if raw is None:
        return None
    refused = Problem(
        400,
        "invalid_parameter",
        f"{name} is a time with its zone (e.g. 2026-01-01T00:00:00Z)",
        pointer=f"/query/{name}",
    )
    try:
        # Strict: Litestar's lax conversion also took numbers as seconds since 1970.
        value = msgspec.convert(raw, datetime)
    except msgspec.ValidationError:
        raise refused from None
    if value.tzinfo is None:
        raise refused
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise refused from None


class QueryLogController(Controller):
    path = "/v1/admin/banks"
    tags = ("bank checks",)
    guards = [roles("admin")]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER_KEY

    @get(
        "/{client_id:str}/query-log",
        operation_class=media_types(200, {NDJSON: _TEXT, CSV: _TEXT}),
        responses=problems(GUARDED, PARAMETER, QUERY, {404: "client_not_found"}),
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        db: Injected[Database],
        settings: Injected[Settings],
        client_id: Annotated[
            str, PathParameter(pattern=IDENTIFIER_PATTERN, description="The bank's client id")
        ],
        start: Annotated[
            str | None, _instant_parameter("from", "Inclusive; default: retention start")
        ] = None,
        end: Annotated[str | None, _instant_parameter("to", "Exclusive; default: now")] = None,
        format: Annotated[
            Literal["ndjson", "csv"], QueryParameter(description="NDJSON (one object a line) or CSV")
        ] = "ndjson",
    ) -> Stream:
        """A bank's query log, oldest first, as NDJSON (default) or CSV. Subjects are blind-index hashes."""
        # Of two `from`, the later read as the start answered an empty log: each once.
        refuse_repeated(request, ("from", "to", "format"))
        now = utcnow()
        since = _instant(start, "from") or now - timedelta(days=settings.checks.log_retention_days)
        until = _instant(end, "to") or now + timedelta(seconds=1)
        # Before the stream starts: an empty 200 read as "this bank checked no one".
        if not await db.read(is_bank, client_id):
            raise Problem(404, "client_not_found", "no bank has this client id", pointer="/path/client_id")

        async def lines() -> AsyncIterator[bytes]:
            after = 0
            first = True
            while True:
                page = await db.read(export_page, client_id, since, until, after, EXPORT_PAGE)
                if format == "csv":
                    text = csv_lines(page, header=first)
                    if text:
                        yield text.encode()
                elif page:
                    # One write a page, as the CSV: a write a row went on after a client left
                    # (each a line of asyncio's "socket.send() raised exception").
                    yield b"".join(msgspec.json.encode(row) + b"\n" for row in page)
                first = False
                if len(page) < EXPORT_PAGE:
                    return
                after = page[-1]["id"]

        return Stream(lines(), media_type=CSV if format == "csv" else NDJSON)
