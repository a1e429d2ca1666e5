"""Public HTTP: the three feeds and the delta API over the `publications` table."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from sqlalchemy import Connection

from publishing.feeds.entries import (
    FeedFilters,
    FeedState,
    PublicationItem,
    delta_page,
    feed_page,
    feed_view,
)
from publishing.feeds.render import FeedLinks, JsonFeed, atom, json_feed, rss
from publishing.feeds.schemas import DeltaPage
from registry.calendar import china_date, china_midnight
from registry.courts.services import court_exists
from registry.db import Database
from registry.http.dependencies import Injected
from registry.http.openapi import PARAMETER, PUBLIC, QUERY, problems, query
from registry.http.params import refuse_repeated, refuse_unknown
from registry.identity.identifiers import PROVINCES, ascii_digits, normalise_text
from registry.problems import Problem
from registry.settings import Settings
from registry.timeutil import utcnow

KINDS = ("person", "organization")
FEED_PARAMETERS = frozenset({"province", "court", "kind", "before"})
MAX_SEQ = 2**63 - 1
MAX_DELTA_LIMIT = 1000
# What a shared cache (a CDN, a newsroom's proxy) may add to a removal's time to leave the
# feed: a second, the feeds reader's own interval. A removal cannot shorten the life of a
# page already cached, so the bound is on every page; a revalidation is a cheap 304.
FEED_CACHE_CONTROL = "public, max-age=1"


@dataclass(frozen=True)
class _Format:
    name: str
    media_type: str
    render: Callable[[list[PublicationItem], FeedLinks, datetime], bytes]


FORMATS = {
    "atom": _Format("atom", "application/atom+xml; charset=utf-8", atom),
    "rss": _Format("rss", "application/rss+xml; charset=utf-8", rss),
    "json": _Format(
        "json", "application/feed+json; charset=utf-8", lambda items, links, _updated: json_feed(items, links)
    ),
}


class RenderedPages:
    """Rendered feed pages by validator. Readers poll the same few pages, and feedgen takes
    about 5 ms to render 50 entries against about 1 ms for the queries; a page's validator
    changes whenever its content can, so a hit is always current."""

    def __init__(self, capacity: int = 512) -> None:
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            self._pages[key] = body
            if len(self._pages) > self._capacity:
                self._pages.popitem(last=False)


class FirstSeen:
    """When this process first read each feed state, taken after the read: by then the state
    was committed. Last-Modified is judged by it, not by event times: an event is stamped
    before it commits (maybe before a reader run that went without it), and the feed can
    change several times within one second, the resolution of HTTP dates."""

    def __init__(self, capacity: int = 64) -> None:
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first(self, state: str, now: datetime) -> datetime:
        with self._lock:
            seen = self._seen.setdefault(state, now)
            if len(self._seen) > self._capacity:
                # The oldest states are long replaced: one read again is only seen anew.
                self._seen.popitem(last=False)
            return seen


_PAGES = RenderedPages()
_FIRST_SEEN = FirstSeen()


@dataclass(frozen=True)
class FeedQuery:
    filters: FeedFilters
    before: int | None


def _filter(value: str | None) -> str | None:
    return None if value is None else normalise_text(value).strip()


def _cursor(before: str) -> int:
    """`before` as the `next` links write it: ASCII digits and nothing else, 1 to MAX_SEQ.
    Unlike the filters it is neither normalised nor stripped: `１`, ` 1` or `1` and a U+2028
    are refused, not read as 1."""
    # ASCII digits only: int() also reads other scripts' digits; past MAX_SEQ's 19 digits it
    # is out of range (and int() refuses 4,300).
    if not ascii_digits(before) or len(before) > len(str(MAX_SEQ)) or not 1 <= int(before) <= MAX_SEQ:
        raise Problem(
            400, "invalid_cursor", "before must be a positive event number", pointer="/query/before"
        )
    return int(before)


def provide_feed_query(
    request: Request[Any, Any, Any],
    province: Annotated[
        str | None, query("Two-digit province code (GB/T 2260)", enum=sorted(PROVINCES))
    ] = None,
    court: Annotated[str | None, query("A court code, e.g. 京0105")] = None,
    kind: Annotated[str | None, query("The debtor's kind", enum=list(KINDS))] = None,
    before: Annotated[
        str | None,
        query(
            "An event number: the page of entries older than it (the `next` link)",
            type="integer",
            minimum=1,
            maximum=MAX_SEQ,
        ),
    ] = None,
) -> FeedQuery:
    """A feed's filters, each given at most once; any other parameter is refused."""
    refuse_unknown(request, sorted(FEED_PARAMETERS))
    refuse_repeated(request, sorted(FEED_PARAMETERS))
    province, court, kind = _filter(province), _filter(court), _filter(kind)
    if province is not None and province not in PROVINCES:
        raise Problem(
            400, "unknown_province", "province must be a two-digit GB/T 2260 code", pointer="/query/province"
        )
    if kind is not None and kind not in KINDS:
        raise Problem(400, "unknown_kind", "kind must be person or organization", pointer="/query/kind")
    # A court is looked up: text PostgreSQL cannot hold (U+0000) names none, and is no query's.
    if court is not None and (not court or "\x00" in court):
        raise Problem(400, "unknown_court", "court must be a court code", pointer="/query/court")
    return FeedQuery(FeedFilters(province, court, kind), None if before is None else _cursor(before))


def _matches(request: Request[Any, Any, Any], etag: str, current_since: datetime) -> bool:
    """RFC 9110 13.1: If-None-Match (weak comparison) wins over If-Modified-Since, which is
    answered 304 only when the page was already as it is at that date (`current_since`)."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as the RFC says
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since > datetime.now(UTC):
        # A date later than the server's time is invalid (RFC 9110 13.1.3): a reader with a
        # fast clock, or one sending its own fetch time, was told 304 after a removal.
        return False
    return current_since <= since


@dataclass(frozen=True)
class _Validators:
    etag: str
    last_modified: datetime
    current_since: datetime  # by when the page was as it is now (`FirstSeen`)


def _validators(state: FeedState, key: str, started: datetime) -> _Validators:
    """The page changes when the log moves, and at midnight China time (ages are shown).

    `started` is taken before the state is read. Last-Modified is the whole second after this
    process first read the state, once that second has come: sent back, it is answered 304
    until the page changes. Until then it is the second `started` falls in: every later state
    commits after this read began, so a copy sent back with it is never answered 304 after a
    change, even one within the same second."""
    seen = utcnow()
    midnight = china_midnight(china_date(seen))
    state_tag = f"{state.position}|{state.event_hash.hex()}|{midnight.isoformat()}"
    current_since = _FIRST_SEEN.first(state_tag, seen)
    settled = current_since.replace(microsecond=0) + timedelta(seconds=1)
    last_modified = settled if settled <= started else started.replace(microsecond=0)
    digest = hashlib.sha256(f"{state_tag}|{key}".encode()).hexdigest()[:32]
    return _Validators(f'W/"{digest}"', last_modified, current_since)


def _url(base: str, path: str, params: dict[str, Any]) -> str:
    present = {k: v for k, v in params.items() if v is not None}
    return f"{base}{path}" + (f"?{urlencode(present)}" if present else "")


# A feed answers 304 to a reader whose copy is current, and 400 for a bad filter.
FEED_RESPONSES = {
    304: ResponseSpec(
        None,
        description="Not modified: the page is unchanged since the `ETag` or `Last-Modified` you sent",
        generate_examples=False,
    ),
    **problems(
        PUBLIC,
        PARAMETER,
        {
            400: (
                "unknown_filter",
                "repeated_parameter",
                "unknown_province",
                "unknown_kind",
                "unknown_court",
                "invalid_cursor",
            )
        },
    ),
}


class FeedController(Controller):
    path = "/feeds"
    tags = ("public",)
    dependencies = {"feed_query": Provide(provide_feed_query, sync_to_thread=False)}  # noqa: RUF012

    async def _serve(
        self,
        request: Request[Any, Any, Any],
        query: FeedQuery,
        db: Database,
        settings: Settings,
        fmt: _Format,
    ) -> Response[bytes]:
        filters, before = query.filters, query.before
        size = settings.feeds.feed_page_size
        # The configured public origin, never the Host header a client chose (cache poisoning).
        base = settings.server.base_url()
        params: dict[str, Any] = {"province": filters.province, "court": filters.court, "kind": filters.kind}

        def build(conn: Connection) -> Response[bytes]:
            started = utcnow()  # before any statement: no snapshot of this request precedes it
            if filters.court is not None and not court_exists(conn, filters.court):
                raise Problem(400, "unknown_court", "no court has this code", pointer="/query/court")
            view = feed_view(conn)
            key = (
                f"{base}|{fmt.name}|{size}|{sorted(params.items())}|{before}"  # links in a page are absolute
            )
            validators = _validators(view.state, key, started)
            etag, last_modified = validators.etag, validators.last_modified
            headers = {
                "ETag": etag,
                "Last-Modified": format_datetime(last_modified, usegmt=True),
                "Cache-Control": FEED_CACHE_CONTROL,
            }
            if _matches(request, etag, validators.current_since):
                return Response(b"", status_code=304, headers=headers)
            cached = _PAGES.get(etag)
            if cached is not None:
                return Response(cached, media_type=fmt.media_type, headers=headers)
            today = china_date(utcnow())
            items, next_before = feed_page(conn, view, filters, before, size, today)
            links = FeedLinks(
                self_url=_url(base, request.url.path, params | {"before": before}),
                first_url=_url(base, request.url.path, params),
                next_url=None
                if next_before is None
                else _url(base, request.url.path, params | {"before": next_before}),
                home_url=f"{base}/",
            )
            body = fmt.render(items, links, items[0].occurred_at if items else last_modified)
            _PAGES.put(etag, body)
            return Response(body, media_type=fmt.media_type, headers=headers)

        return await db.read(build)

    @get("/atom.xml", media_type="application/atom+xml", responses=FEED_RESPONSES)
    async def atom_feed(
        self,
        request: Request[Any, Any, Any],
        feed_query: Injected[FeedQuery],
        db: Injected[Database],
        settings: Injected[Settings],
    ) -> Response[bytes]:
        """Atom 1.0, newest first; RFC 5005 `first`/`next` links page back through history."""
        return await self._serve(request, feed_query, db, settings, FORMATS["atom"])

    @get("/rss.xml", media_type="application/rss+xml", responses=FEED_RESPONSES)
    async def rss_feed(
        self,
        request: Request[Any, Any, Any],
        feed_query: Injected[FeedQuery],
        db: Injected[Database],
        settings: Injected[Settings],
    ) -> Response[bytes]:
        """RSS 2.0, newest first (older pages with `before`)."""
        return await self._serve(request, feed_query, db, settings, FORMATS["rss"])

    @get(
        "/feed.json",
        media_type="application/feed+json",
        responses={
            200: ResponseSpec(
                JsonFeed,
                media_type="application/feed+json",
                description="A JSON Feed 1.1 page",
                generate_examples=False,
            ),
            **FEED_RESPONSES,
        },
    )
    async def json_feed(
        self,
        request: Request[Any, Any, Any],
        feed_query: Injected[FeedQuery],
        db: Injected[Database],
        settings: Injected[Settings],
    ) -> Response[bytes]:
        """JSON Feed 1.1, newest first, `next_url` to older pages; `_registry` holds the public entry."""
        return await self._serve(request, feed_query, db, settings, FORMATS["json"])


class PublicationController(Controller):
    path = "/v1/publications"
    tags = ("public",)

    @get("/", responses=problems(PUBLIC, QUERY, {400: "invalid_cursor"}))
    async def delta(
        self,
        db: Injected[Database],
        after: Annotated[
            int, Parameter(ge=0, le=MAX_SEQ, description="The next_after of your last page")
        ] = 0,
        limit: Annotated[int, Parameter(ge=1, le=MAX_DELTA_LIMIT)] = 100,
    ) -> DeltaPage:
        """Publications, amendments and removals in the public profile, oldest first.

        Follow with `after` = the `next_after` you got: nothing is skipped or repeated. A
        listing removed before you read its publication shows only as its removal.
        """
        return await db.read(_delta, after, limit, china_date(utcnow()))


def _delta(conn: Connection, after: int, limit: int, today: date) -> DeltaPage:
    items, next_after, position = delta_page(conn, after, limit, today)
    if after > position:
        raise Problem(400, "invalid_cursor", "after is beyond anything published", pointer="/query/after")
    return DeltaPage(items=items, next_after=next_after, position=position)
