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
from registry.http.ratelimit import (
    charge_number_lookup,
    rate_limit_headers,
    rate_limited_problem,
    retry_after_seconds,
)
from registry.identity.crypto import Secrets
from registry.identity.identifiers import PROVINCES
from registry.ids import is_id
from registry.text import without_forbidden
from search.interface import SearchIndex, SearchUnavailable
from search.query import MAX_PARAM_CHARS
from search.web.forms import MAX_PAGE, PER_PAGE, FormError, SearchForm, parse_search
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


def _search_params(form: SearchForm, page: int | None = None) -> str:
    params = {"q": form.q, "page": str(page or form.page)}
    if form.province:
        params["province"] = form.province
    return urlencode(params)


def rate_limited_page(request: Request[Any, Any, Any], exc: TooManyRequestsException) -> Response[Any]:
    """A person gets the reason in Chinese; a program asking for JSON gets the problem."""
    if request.accept.best_match([MediaType.HTML, "application/problem+json"]) != MediaType.HTML:
        return rate_limited_problem(request, exc)
    return _page(
        "rate_limited.html", status=429, headers=rate_limit_headers(exc), seconds=retry_after_seconds(exc)
    )


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
    ) -> Template:  # fmt: skip
        if q is None and province is None and page is None:
            return _page("search.html", form=None, values={}, error=None, result=None)
        # Echoed into the field as typed (escaped), less what the query may not hold (a bidi
        # override would garble the page), cut short if it is absurdly long. The province
        # only picks an option of the list.
        values = {
            "q": without_forbidden(q or "")[:MAX_PARAM_CHARS],
            "province": province if province in PROVINCES else "",
        }
        try:
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
