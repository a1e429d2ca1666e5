"""The public JSON API of the defaulter list: no authentication, the SPC Art. 6 fields only."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath

from registry.http.dependencies import Injected
from registry.identity.crypto import Secrets
from registry.listings.disclosure import PublicEntry
from registry.problems import Problem
from search.interface import SearchIndex, SearchResult
from search.query import MAX_PARAM_CHARS, PARAMETERS, parse_query


def query_params(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """The known parameters, each given at most once (a repeated one is ambiguous: refused)."""
    params: dict[str, str | None] = {}
    for name in PARAMETERS:
        values = request.query_params.getall(name, [])
        if len(values) > 1:
            raise Problem(
                400, "repeated_parameter", f"{name} is given more than once", pointer=f"/query/{name}"
            )
        params[name] = values[0] if values else None
    return params


class PublicSearchController(Controller):
    path = "/v1/public/defaulters"
    tags = ("public",)

    @get("/")
    async def search(
        self, request: Request[Any, Any, Any], secrets: Injected[Secrets], search_index: Injected[SearchIndex]
    ) -> SearchResult:
        """Search the list by name (Chinese, part of it, or pinyin), or by a full ID number or
        credit code; filter by province, court, kind, ground and publication dates.

        Answers `{"hits": [...], "total": N, "facets": {"province": {...}, "ground": {...}}}`.
        """
        query = parse_query(query_params(request), secrets.blind_index)
        return await search_index.search(query)

    @get("/{listing_id:str}")
    async def entry(self, search_index: Injected[SearchIndex], listing_id: FromPath[str]) -> PublicEntry:
        """One entry of the list, while it is published."""
        found = None
        if len(listing_id) <= MAX_PARAM_CHARS:
            found = await search_index.get(listing_id)
        if found is None:
            raise Problem(404, "entry_not_found", "no published entry has this id")
        return found
