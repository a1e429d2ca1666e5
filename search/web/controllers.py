"""The public web page: search form, result list and one page per entry, server-rendered.

Every value shown comes from `PublicEntry` (the SPC Art. 6 allow-list) through the search
index, and the templates escape all of it. Bad input answers the form again with the reason
and a 4xx status. The page needs no JavaScript.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, MediaType, Request, Response, get
from litestar.exceptions import TooManyRequestsException
from litestar.params import FromPath, FromQuery
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.router import Router
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from registry.http.dependencies import Injected
from registry.http.pages import PUBLIC_PAGE_HEADERS
from registry.http.params import refuse_repeated
from registry.http.ratelimit import (
    NumberLookupRefused,
    charge_number_lookup,
    rate_limit_headers,
    rate_limited_problem,
    retry_after_seconds,
)
from registry.identity.crypto import BlindIndex, Secrets
from registry.identity.identifiers import PROVINCES
from registry.ids import is_id
from registry.problems import Problem
from registry.text import without_forbidden
from search.interface import SearchIndex, SearchUnavailable
from search.query import MAX_PARAM_CHARS, parse_query
from search.web.forms import MAX_PAGE, PER_PAGE, FormError, SearchForm, form_error, parse_search
from search.web.labels import environment

STATIC = Path(__file__).resolve().parents[1] / "static"
STATIC_PATH = "/static/public"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def static_files_router() -> Router:
    return create_static_files_router(path=STATIC_PATH, directories=[STATIC], include_in_schema=False)


def _page(name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Template:
    return Template(
        template_name=name,
        context={"static": STATIC_PATH, **context},
        status_code=status,
        media_type=MediaType.HTML,
        headers={**PUBLIC_PAGE_HEADERS, **(headers or {})},
    )


# The parameters the page reads: its three fields, and the two of the API's that qualify a
# number (refused here as there: the page's number goes in its one field, whose type is read
# off its shape).
PAGE_PARAMETERS = ("q", "province", "page", "id_type", "nationality")
_LABELS = {"q": "检索内容", "province": "省份", "page": "页码", "id_type": "证件类型", "nationality": "国籍"}


def _refused(exc: Problem) -> FormError:
    """One of the JSON API's refusals, in the visitor's words, at its field."""
    name = (exc.pointer or "").removeprefix("/query/")
    if exc.code == "repeated_parameter":
        label = _LABELS.get(name, name)
        message = f"“{label}”在查询地址中出现了不止一次：每项只能填写一个，请重新查询。"
        return FormError(exc.code, message, field=name)
    return form_error(exc)


def _check_api_rules(
    request: Request[Any, Any, Any], params: dict[str, str | None], blind_index: BlindIndex
) -> None:
    """The API's refusals of what the page's form leaves aside: a repeated parameter (which of
    two was meant is a guess), and an id_type or nationality, which the API refuses without
    an id_number or beside a number in q, and so does the page."""
    refuse_repeated(request, PAGE_PARAMETERS)
    if params["id_type"] is not None or params["nationality"] is not None:
        parse_query(params, blind_index)  # always refuses: no id_number can come with them here


_PER = {1: "每秒", 60: "每分钟", 3600: "每小时", 86400: "每天"}


def _search_params(form: SearchForm, page: int | None = None) -> str:
    params = {"q": form.q, "page": str(page or form.page)}
    if form.province:
        params["province"] = form.province
    return urlencode(params)


def rate_limited_page(request: Request[Any, Any, Any], exc: TooManyRequestsException) -> Response[Any]:
    """A person gets the reason in Chinese; a program asking for JSON gets the problem."""
    if request.accept.best_match([MediaType.HTML, "application/problem+json"]) != MediaType.HTML:
        return rate_limited_problem(request, exc)
    headers, seconds = rate_limit_headers(exc), retry_after_seconds(exc)
    if isinstance(exc, NumberLookupRefused):
        # The number budget's own page: names are still searched, only numbers wait.
        limit, _, window = headers["RateLimit-Policy"].partition("; w=")
        per = _PER.get(int(window), f"每 {window} 秒")
        return _page(
            "numbers_spent.html", 429, headers, spent=exc.spent, limit=limit, seconds=seconds, per=per
        )
    return _page("rate_limited.html", status=429, headers=headers, seconds=seconds)


def unavailable_page(_request: Request[Any, Any, Any], exc: SearchUnavailable) -> Response[Any]:
    """The engine is down: say so in Chinese, with when to try again (503, Retry-After)."""
    seconds = int(exc.extra["retry_after"])
    return _page("unavailable.html", status=503, headers={"Retry-After": str(seconds)}, seconds=seconds)


class PublicPages(Controller):
    """`/`: the search form and its results; `/defaulters/{id}`: one entry."""

    include_in_schema = False
    exception_handlers = {  # noqa: RUF012
        TooManyRequestsException: rate_limited_page,
        SearchUnavailable: unavailable_page,
    }

    @get("/")
    async def search(
        self, request: Request[Any, Any, Any], secrets: Injected[Secrets],
        search_index: Injected[SearchIndex], q: FromQuery[str | None] = None,
        province: FromQuery[str | None] = None, page: FromQuery[str | None] = None,
        id_type: FromQuery[str | None] = None, nationality: FromQuery[str | None] = None,
    ) -> Template:  # fmt: skip
        given = {"q": q, "province": province, "page": page, "id_type": id_type, "nationality": nationality}
        if all(value is None for value in given.values()):
            return _page("search.html", form=None, values={}, error=None, result=None)
        # Echoed into the field as typed (escaped), less what the query may not hold (a bidi
        # override would garble the page), cut short if it is absurdly long. The province
        # only picks an option of the list.
        values = {
            "q": without_forbidden(q or "")[:MAX_PARAM_CHARS],
            "province": province if province in PROVINCES else "",
        }
        try:
            try:
                _check_api_rules(request, {k: v or None for k, v in given.items()}, secrets.blind_index)
            except Problem as problem:
                raise _refused(problem) from problem
            form = parse_search(q, province, page, secrets.blind_index)
        except FormError as exc:
            return _page("search.html", status=400, form=None, values=values, error=exc, result=None)
        if form.query.identifier_blind is not None:
            await charge_number_lookup(request)  # a budget of its own (REGISTRY_PUBLIC_NUMBER_LOOKUP_LIMIT)
        result = await search_index.search(form.query)
        if result.total_exact:
            last_page = min(MAX_PAGE, max(1, -(-result.total // PER_PAGE)))
        else:
            # Not counted to the end: the last page is unknown, a page past it is empty.
            last_page = MAX_PAGE if result.hits else form.page - 1
        if form.page > last_page:
            pages = f"共 {last_page} 页" if result.total_exact else f"不足 {form.page} 页"
            error = FormError("page_out_of_range", f"该页不存在：检索结果{pages}。", field="page")
            return _page("search.html", status=404, form=form, values=values, error=error, result=None)
        return _page(
            "search.html",
            form=form,
            values={"q": form.q, "province": form.province or ""},
            error=None,
            result=result,
            last_page=last_page,
            cap=MAX_PAGE * PER_PAGE,
            page_size=PER_PAGE,
            page_url=lambda n: "/?" + _search_params(form, n),
            province_url=lambda code: "/?" + urlencode({"q": form.q, "province": code}),
            # Detail links carry the search for their back link; not a full number, which
            # should appear in as few URLs (and history entries) as possible.
            back=_search_params(form) if form.query.text is not None else "",
        )

    @get("/defaulters/{listing_id:str}")
    async def detail(
        self, secrets: Injected[Secrets], search_index: Injected[SearchIndex], listing_id: FromPath[str],
        q: FromQuery[str | None] = None, province: FromQuery[str | None] = None,
        page: FromQuery[str | None] = None,
    ) -> Template:  # fmt: skip
        entry = await search_index.get(listing_id) if is_id(listing_id) else None
        if entry is None:
            return _page("not_found.html", status=404)
        try:
            # Back to the result page the visitor came from, when the link carried a valid search.
            back = "/?" + _search_params(parse_search(q, province, page, secrets.blind_index))
        except FormError:
            back = "/"
        return _page("detail.html", entry=entry, back=back)
