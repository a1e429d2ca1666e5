"""The public statistics page (`/statistics`) and the oversight dashboard (`/oversight`),
server-rendered in Chinese; their charts are SVG images from this service (no script, the
same CSP as the public search page). Bad input answers the form again with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Controller, MediaType, Request, Response, get
from litestar.exceptions import TooManyRequestsException
from litestar.params import FromPath
from litestar.router import Router
from litestar.static_files import create_static_files_router
from sqlalchemy import Connection

from publishing.statistics import charts
from publishing.statistics.answers import BreakdownOut, SeriesOut
from publishing.statistics.controllers import (
    OversightOut,
    read_breakdown,
    read_oversight,
    read_series,
    scoped,
)
from publishing.statistics.oversight import shown
from publishing.statistics.params import StatisticsQuery, parse_query
from registry.clients.services import Principal
from registry.db import Database
from registry.http.auth import roles
from registry.http.dependencies import Injected
from registry.http.errors import rate_limited_page
from registry.http.pages import PUBLIC_PAGE_HEADERS
from registry.http.params import refuse_repeated
from registry.identity.identifiers import PROVINCES
from registry.listings.wording import GROUNDS, KIND, REMOVAL_REASONS, cn_date
from registry.problems import Problem

HERE = Path(__file__).resolve().parent
STATIC_PATH = "/static/statistics"
# An image: its own styles only, never a script, never framed.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
SVG = "image/svg+xml"
INTERVALS = {"month": "按月", "week": "按周", "day": "按日"}
UNITS = {"month": "月", "week": "周", "day": "日"}
# What the visitor reads for each refusal of `parse_query`.
MESSAGES = {
    "invalid_date": "日期格式应为“年-月-日”，且须为有效日期。",
    "period_invalid": "截止日期不能早于开始日期，日期须在1990年1月1日至今天之间。",
    "period_too_long": "所选期间过长：按日统计不超过366天，按周不超过530周，按月不超过240个月。",
    "unknown_interval": "统计周期无效。",
    "unknown_province": "省份无效。",
    "invalid_court_code": "法院代码无效。",
    "unknown_kind": "被执行人类型无效。",
    "unknown_special_subject": "特殊主体类别无效。",
    "unknown_breakdown": "分类方式无效。",
    "not_your_court": "只能查看本院数据。",
    "repeated_parameter": "同一查询条件只能填写一个。",
}


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return "—"
    return str(shown(key, value))


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ground=lambda code: GROUNDS.get(code, code),
        reason=lambda code: REMOVAL_REASONS.get(code, code),
        cellfmt=_cell,
    )
    env.globals.update(provinces=PROVINCES, kinds=KIND, intervals=INTERVALS)
    return env


_ENV = environment()


def static_router() -> Router:
    return create_static_files_router(
        path=STATIC_PATH, directories=[HERE / "static"], include_in_schema=False
    )


def _html(name: str, status: int = 200, **context: Any) -> Response[str]:
    return Response(
        _ENV.get_template(name).render(**context),
        status_code=status,
        media_type=MediaType.HTML,
        headers=PUBLIC_PAGE_HEADERS,
    )


_KEYS = ("from", "to", "interval", "province", "kind", "court")


def _raw(request: Request[Any, Any, Any]) -> dict[str, str]:
    return {key: request.query_params.get(key) or "" for key in _KEYS}


def _parse(request: Request[Any, Any, Any]) -> StatisticsQuery:
    """The query, as the JSON API reads it: each parameter given once (of two provinces,
    which was meant is a guess; the page showed the first)."""
    refuse_repeated(request, _KEYS)
    raw = _raw(request)
    return parse_query(
        start=raw["from"],
        end=raw["to"],
        interval=raw["interval"],
        province=raw["province"],
        court=raw["court"],
        kind=raw["kind"],
        special_subject=None,
    )


def _form(query: StatisticsQuery) -> dict[str, str]:
    return {
        "from": query.period.start.isoformat(),
        "to": query.period.end.isoformat(),
        "interval": query.period.interval,
        "province": query.filters.province or "",
        "kind": query.filters.kind or "",
        "court": query.filters.court or "",
    }


def _period_text(query: StatisticsQuery) -> str:
    return f"{cn_date(query.period.start)}至{cn_date(query.period.end)}"


def _point_label(start: Any, interval: str) -> str:
    if interval == "month":
        return f"{start.year}年{start.month}月"
    if interval == "week":
        return f"{cn_date(start)}起"
    return cn_date(start)


def _query_string(query: StatisticsQuery) -> str:
    return urlencode({k: v for k, v in query.params(by=None).items()})


def _error(template: str, problem: Problem, raw: dict[str, str], **context: Any) -> Response[str]:
    field = (problem.pointer or "").removeprefix("/query/")
    return _html(
        template,
        status=problem.status,
        error=MESSAGES.get(problem.code, problem.detail),
        error_field=field,
        form=raw | {"interval": raw["interval"] or "month"},
        **context,
    )


def _public_page(conn: Connection, query: StatisticsQuery) -> tuple[SeriesOut, BreakdownOut]:
    return read_series(conn, query, True), read_breakdown(conn, _by(query, "province"), True)


def _by(query: StatisticsQuery, by: str) -> StatisticsQuery:
    return StatisticsQuery(query.period, query.filters, by)


class StatisticsPages(Controller):
    """The public statistics page and its charts (small cells hidden, as in the public API)."""

    path = "/statistics"
    include_in_schema = False
    # Past the public rate limit a person gets the reason in Chinese, as on the search page.
    exception_handlers = {TooManyRequestsException: rate_limited_page}  # noqa: RUF012

    @get("/")
    async def page(self, request: Request[Any, Any, Any], db: Injected[Database]) -> Response[str]:
        raw = _raw(request)
        common: dict[str, Any] = {"action": "/statistics", "show_court": False}
        try:
            query = _parse(request)
        except Problem as problem:
            return _error("statistics.html", problem, raw, stats=None, **common)
        stats, provinces = await db.read(_public_page, query)
        return _html(
            "statistics.html",
            stats=stats,
            provinces_rows=provinces.rows,
            province_chart_height=max(240, 60 + 28 * len(provinces.rows)),
            point_labels=[_point_label(p.start, query.period.interval) for p in stats.points],
            period_text=_period_text(query),
            interval_name=INTERVALS[query.period.interval],
            interval_unit=UNITS[query.period.interval],
            query=_query_string(query),
            form=_form(query),
            error=None,
            error_field=None,
            **common,
        )

    @get("/charts/{name:str}", media_type=SVG)
    async def chart(
        self, name: FromPath[str], request: Request[Any, Any, Any], db: Injected[Database]
    ) -> Response[bytes]:
        make = PUBLIC_CHARTS.get(name)
        if make is None:
            raise Problem(404, "chart_not_found", "no chart has this name")
        query = _parse(request)
        return Response(await db.read(make, query), media_type=SVG, headers=SVG_HEADERS)


def _series_chart(conn: Connection, query: StatisticsQuery) -> bytes:
    stats = read_series(conn, query, True)
    labels = [_point_label(p.start, query.period.interval) for p in stats.points]
    return charts.bars_over_time(
        "新纳入与删除",
        labels,
        {
            "新纳入": [p.figures.listed for p in stats.points],
            "删除": [p.figures.removed for p in stats.points],
        },
    )


def _active_chart(conn: Connection, query: StatisticsQuery) -> bytes:
    stats = read_series(conn, query, True)
    labels = [_point_label(p.start, query.period.interval) for p in stats.points]
    return charts.line_over_time(
        "期末在册", labels, {"期末在册": [p.figures.active_end for p in stats.points]}
    )


def _provinces_chart(conn: Connection, query: StatisticsQuery) -> bytes:
    rows = read_breakdown(conn, _by(query, "province"), True).rows
    return charts.horizontal_bars("各省份新纳入", [(r.label, r.figures.listed) for r in rows], "新纳入")


def _grounds_chart(conn: Connection, query: StatisticsQuery) -> bytes:
    totals = read_series(conn, query, True).totals
    rows = [(GROUNDS[code], count) for code, count in totals.grounds.items()]
    return charts.horizontal_bars("失信情形", rows, "数量")


def _reasons_chart(conn: Connection, query: StatisticsQuery) -> bytes:
    totals = read_series(conn, query, True).totals
    rows = [(REMOVAL_REASONS[code], count) for code, count in totals.reasons.items()]
    return charts.horizontal_bars("删除原因", rows, "数量")


PUBLIC_CHARTS: dict[str, Callable[[Connection, StatisticsQuery], bytes]] = {
    "series.svg": _series_chart,
    "active.svg": _active_chart,
    "provinces.svg": _provinces_chart,
    "grounds.svg": _grounds_chart,
    "reasons.svg": _reasons_chart,
}


# ---- oversight ----

OVERSIGHT_CHARTS = {
    "removal_timeliness": "各法院按期删除率",
    "corrections": "各法院纠正申请按期审查率",
    "notices_by_agency": "各协助单位逾期未办理的通知数",
    "special_subjects": "特殊主体因履行删除占比",
}


def _percent(value: Any) -> int | str:
    return "" if value is None else round(value * 100)


def _oversight_chart(section: Any) -> bytes:
    if section.key == "removal_timeliness":
        rows = [(r["court_name"], _percent(r["on_time_rate"])) for r in section.rows]
        return charts.horizontal_bars(OVERSIGHT_CHARTS[section.key], rows, "按期率", percent=True)
    if section.key == "corrections":
        rows = [(r["court_name"], _percent(r["review_on_time_rate"])) for r in section.rows]
        return charts.horizontal_bars(OVERSIGHT_CHARTS[section.key], rows, "按期审查率", percent=True)
    if section.key == "notices_by_agency":
        rows = [(f"{r['agency']}（{shown('profile', r['profile'])}）", r["overdue"]) for r in section.rows]
        return charts.horizontal_bars(OVERSIGHT_CHARTS[section.key], rows, "逾期未办理")
    rows = [(r["label"], _percent(r["performed_rate"])) for r in section.rows]
    return charts.horizontal_bars(OVERSIGHT_CHARTS[section.key], rows, "因履行删除占比", percent=True)


def _chart_height(section: Any) -> int:
    return max(240, 60 + 28 * len(section.rows))


class OversightPages(Controller):
    """The dashboard: admins see every court, a court its own figures (exact counts)."""

    path = "/oversight"
    include_in_schema = False
    guards = [roles("admin", "court")]  # noqa: RUF012 - Litestar's declaration style

    @get("/")
    async def page(
        self, request: Request[Any, Any, Any], db: Injected[Database], principal: Injected[Principal]
    ) -> Response[str]:
        raw = _raw(request)
        common: dict[str, Any] = {
            "action": "/oversight",
            "show_court": principal.bound_court is None,
            "court": principal.bound_court,
            "charts": OVERSIGHT_CHARTS,
        }
        try:
            query = scoped(_parse(request), principal)
        except Problem as problem:
            return _error("oversight.html", problem, raw, sections=None, chart_heights={}, **common)
        answer: OversightOut = await db.read(read_oversight, query, query.filters.court)
        return _html(
            "oversight.html",
            sections=answer.sections,
            chart_heights={s.key: _chart_height(s) for s in answer.sections},
            period_text=_period_text(query),
            query=_query_string(query),
            form=_form(query),
            error=None,
            error_field=None,
            **common,
        )

    @get("/charts/{name:str}", media_type=SVG)
    async def chart(
        self,
        name: FromPath[str],
        request: Request[Any, Any, Any],
        db: Injected[Database],
        principal: Injected[Principal],
    ) -> Response[bytes]:
        key = name.removesuffix(".svg")
        if key not in OVERSIGHT_CHARTS or not name.endswith(".svg"):
            raise Problem(404, "chart_not_found", "no chart has this name")
        query = scoped(_parse(request), principal)
        answer: OversightOut = await db.read(read_oversight, query, query.filters.court)
        section = next(s for s in answer.sections if s.key == key)
        return Response(_oversight_chart(section), media_type=SVG, headers=SVG_HEADERS)
