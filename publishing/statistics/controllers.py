"""The statistics API: public figures (small cells hidden), the oversight figures for admins
and courts (exact; a court sees its own), CSV of both, and Prometheus gauges for operators."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.params import FromPath
from sqlalchemy import Connection

from publishing.statistics.answers import (
    BreakdownOut,
    SeriesOut,
    breakdown_csv,
    breakdown_out,
    csv_bytes,
    series_csv,
    series_out,
)
from publishing.statistics.metrics import prometheus_text
from publishing.statistics.oversight import Scope, Section, court_names, oversight, shown
from publishing.statistics.params import (
    By,
    Court,
    From,
    IntervalParam,
    Kind,
    Province,
    Special,
    StatisticsQuery,
    To,
    parse_query,
)
from publishing.statistics.queries import breakdown, series
from registry.clients.services import Principal
from registry.courts.services import court_exists
from registry.csvsafe import MEDIA_TYPE as CSV
from registry.db import Database
from registry.http.auth import roles
from registry.http.dependencies import Injected
from registry.http.openapi import BEARER_KEY, GUARDED, PARAMETER, PROMETHEUS_TEXT, PUBLIC, problems
from registry.http.params import refuse_repeated, refuse_unknown
from registry.problems import Problem
from registry.timeutil import utcnow

# Each given once: of two `from` or two `court`, which was meant is a guess.
STATISTICS_PARAMETERS = ("from", "to", "interval", "province", "court", "kind", "special_subject", "by")

QUERY_CODES = {
    400: (
        "repeated_parameter",
        "invalid_date",
        "period_invalid",
        "period_too_long",
        "unknown_interval",
        "unknown_province",
        "invalid_court_code",
        "unknown_kind",
        "unknown_special_subject",
        "unknown_breakdown",
        "unknown_court",
        "unknown_filter",
    )
}


async def provide_query(
    request: Request[Any, Any, Any],
    db: Injected[Database],
    start: From = None,
    to: To = None,
    interval: IntervalParam = None,
    province: Province = None,
    court: Court = None,
    kind: Kind = None,
    special_subject: Special = None,
    by: By = None,
) -> StatisticsQuery:
    # A misspelt filter (provnce) answered without it, and a court no one has (沪9999)
    # answered zeros: both read as figures for what was asked. Refused, as the search does.
    refuse_unknown(request, STATISTICS_PARAMETERS)
    refuse_repeated(request, STATISTICS_PARAMETERS)
    query = parse_query(
        start=start,
        end=to,
        interval=interval,
        province=province,
        court=court,
        kind=kind,
        special_subject=special_subject,
        by=by,
        series=request.url.path.endswith(("/listings", "/listings.csv")),
    )
    code = query.filters.court
    if code is not None and not await db.read(court_exists, code):
        raise Problem(400, "unknown_court", "no court has this code", pointer="/query/court")
    return query


QUERY = {"stats_query": Provide(provide_query)}


def read_series(conn: Connection, query: StatisticsQuery, public: bool) -> SeriesOut:
    return series_out(query, series(conn, query.period, query.filters), public)


def read_breakdown(conn: Connection, query: StatisticsQuery, public: bool) -> BreakdownOut:
    by = query.by or "province"
    rows = breakdown(conn, query.period, query.filters, by)
    return breakdown_out(query, by, rows, court_names(conn) if by == "court" else {}, public)


def _download(body: bytes, name: str, query: StatisticsQuery) -> Response[bytes]:
    filename = f"{name}_{query.period.start.isoformat()}_{query.period.end.isoformat()}.csv"
    return Response(
        body, media_type=CSV, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


class PublicStatisticsController(Controller):
    """Figures anyone may read. A count from 1 to 4 reads "<5"."""

    path = "/v1/statistics"
    tags = ("statistics",)
    dependencies = QUERY

    @get("/listings", responses=problems(PARAMETER, QUERY_CODES, PUBLIC))
    async def listings(self, db: Injected[Database], stats_query: Injected[StatisticsQuery]) -> SeriesOut:
        """Listings and removals per day, week or month of the period, and the active count
        at the end of each, with the period's totals by ground and removal reason."""
        return await db.read(read_series, stats_query, True)

    @get("/listings.csv", media_type=CSV, responses=problems(PARAMETER, QUERY_CODES, PUBLIC))
    async def listings_csv(
        self, db: Injected[Database], stats_query: Injected[StatisticsQuery]
    ) -> Response[bytes]:
        """The same figures as CSV for spreadsheets: Chinese headers and words, no code (UTF-8
        with a byte-order mark)."""
        answer = await db.read(read_series, stats_query, True)
        return _download(series_csv(answer), "listings", stats_query)

    @get("/breakdown", responses=problems(PARAMETER, QUERY_CODES, PUBLIC))
    async def breakdown(self, db: Injected[Database], stats_query: Injected[StatisticsQuery]) -> BreakdownOut:
        """The period's figures by province (default), court, debtor kind, special subject,
        ground (listed with it) or removal reason (removed for it)."""
        return await db.read(read_breakdown, stats_query, True)

    @get("/breakdown.csv", media_type=CSV, responses=problems(PARAMETER, QUERY_CODES, PUBLIC))
    async def breakdown_csv(
        self, db: Injected[Database], stats_query: Injected[StatisticsQuery]
    ) -> Response[bytes]:
        answer = await db.read(read_breakdown, stats_query, True)
        return _download(breakdown_csv(answer), f"by_{answer.by}", stats_query)


def scoped(query: StatisticsQuery, principal: Principal) -> StatisticsQuery:
    """A court's client reads its own court's figures, whatever court it asks for."""
    court = principal.bound_court
    if court is None:
        return query
    if query.filters.court not in (None, court):
        raise Problem(403, "not_your_court", "a court reads its own figures only", pointer="/query/court")
    return replace(query, filters=replace(query.filters, court=court))


class ColumnOut(msgspec.Struct, kw_only=True):
    key: str
    label: str


class SectionOut(msgspec.Struct, kw_only=True):
    """One table of the dashboard: its columns (key and Chinese label) and rows by key."""

    key: str
    title: str
    note: str
    columns: list[ColumnOut]
    rows: list[dict[str, Any]]


class OversightOut(msgspec.Struct, kw_only=True):
    period_from: date = msgspec.field(name="from")
    period_to: date = msgspec.field(name="to")
    court: str | None
    sections: list[SectionOut]


def section_out(section: Section) -> SectionOut:
    return SectionOut(
        key=section.key,
        title=section.title,
        note=section.note,
        columns=[ColumnOut(key=c.key, label=c.label) for c in section.columns],
        rows=section.rows,
    )


def read_oversight(conn: Connection, query: StatisticsQuery, court: str | None) -> OversightOut:
    sections = oversight(conn, Scope(query, court, utcnow()))
    return OversightOut(
        period_from=query.period.start,
        period_to=query.period.end,
        court=court,
        sections=[section_out(s) for s in sections],
    )


def section_csv(section: SectionOut) -> bytes:
    header = [c.label for c in section.columns]
    lines = ([shown(c.key, row.get(c.key)) for c in section.columns] for row in section.rows)
    return csv_bytes([header, *lines])


class OversightController(Controller):
    """Exact figures for admins, and for each court its own (Opinion Art. 22-24)."""

    path = "/v1/oversight"
    tags = ("statistics",)
    guards = [roles("admin", "court")]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER_KEY
    dependencies = QUERY

    @get("/listings", responses=problems(GUARDED, PARAMETER, QUERY_CODES, {403: "not_your_court"}))
    async def listings(
        self, db: Injected[Database], principal: Injected[Principal], stats_query: Injected[StatisticsQuery]
    ) -> SeriesOut:
        """As `GET /v1/statistics/listings`, with exact counts."""
        return await db.read(read_series, scoped(stats_query, principal), False)

    @get(
        "/listings.csv",
        media_type=CSV,
        responses=problems(GUARDED, PARAMETER, QUERY_CODES, {403: "not_your_court"}),
    )
    async def listings_csv(
        self, db: Injected[Database], principal: Injected[Principal], stats_query: Injected[StatisticsQuery]
    ) -> Response[bytes]:
        query = scoped(stats_query, principal)
        return _download(series_csv(await db.read(read_series, query, False)), "listings", query)

    @get("/breakdown", responses=problems(GUARDED, PARAMETER, QUERY_CODES, {403: "not_your_court"}))
    async def breakdown(
        self, db: Injected[Database], principal: Injected[Principal], stats_query: Injected[StatisticsQuery]
    ) -> BreakdownOut:
        """As `GET /v1/statistics/breakdown`, with exact counts."""
        return await db.read(read_breakdown, scoped(stats_query, principal), False)

    @get(
        "/breakdown.csv",
        media_type=CSV,
        responses=problems(GUARDED, PARAMETER, QUERY_CODES, {403: "not_your_court"}),
    )
    async def breakdown_csv(
        self, db: Injected[Database], principal: Injected[Principal], stats_query: Injected[StatisticsQuery]
    ) -> Response[bytes]:
        query = scoped(stats_query, principal)
        answer = await db.read(read_breakdown, query, False)
        return _download(breakdown_csv(answer), f"by_{answer.by}", query)

    @get("/summary", responses=problems(GUARDED, PARAMETER, QUERY_CODES, {403: "not_your_court"}))
    async def summary(
        self, db: Injected[Database], principal: Injected[Principal], stats_query: Injected[StatisticsQuery]
    ) -> OversightOut:
        """Removal timeliness by court, assistance notices by agency (issued, acknowledged,
        objected, overdue), special subjects' performance: the dashboard's tables."""
        query = scoped(stats_query, principal)
        return await db.read(read_oversight, query, query.filters.court)

    @get(
        "/summary/{section:str}/csv",
        media_type=CSV,
        responses=problems(
            GUARDED, PARAMETER, QUERY_CODES, {403: "not_your_court", 404: "section_not_found"}
        ),
    )
    async def summary_csv(
        self,
        section: FromPath[str],
        db: Injected[Database],
        principal: Injected[Principal],
        stats_query: Injected[StatisticsQuery],
    ) -> Response[bytes]:
        """One table of the summary as CSV."""
        query = scoped(stats_query, principal)
        answer = await db.read(read_oversight, query, query.filters.court)
        for item in answer.sections:
            if item.key == section:
                return _download(section_csv(item), item.key, query)
        raise Problem(404, "section_not_found", "no summary section has this key")


class StatisticsMetricsController(Controller):
    path = "/metrics/statistics"
    tags = ("statistics",)
    guards = [roles("admin")]  # noqa: RUF012
    security = BEARER_KEY

    @get("/", media_type=PROMETHEUS_TEXT, responses=problems(GUARDED))
    async def metrics(self, db: Injected[Database]) -> Response[bytes]:
        """The statistics as Prometheus gauges (scrape with a bearer admin key)."""
        return Response(await db.read(prometheus_text, utcnow()), media_type=PROMETHEUS_TEXT)
