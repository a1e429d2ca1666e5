"""The public JSON API of the defaulter list: no authentication, the SPC Art. 6 fields only."""

from __future__ import annotations

from types import MappingProxyType
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import Provide

from registry.courts.services import court_exists
from registry.db import Database
from registry.http.dependencies import Injected
from registry.http.openapi import PARAMETER, PUBLIC, problems, query
from registry.http.params import Id, refuse_repeated, refuse_unknown
from registry.http.ratelimit import charge_number_lookup
from registry.identity.crypto import Secrets
from registry.identity.identifiers import PROVINCES
from registry.identity.types import PERSON_ID_TYPES
from registry.ids import is_id
from registry.listings.disclosure import PublicEntry
from registry.listings.schemas import GROUNDS
from registry.problems import Problem
from search.interface import KINDS, SearchIndex, SearchQuery, SearchResult
from search.query import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    MAX_QUERY_CHARS,
    MAX_WINDOW,
    PARAMETERS,
    parse_query,
)


async def refuse_unknown_court(court: str | None, db: Database) -> None:
    """A court code no court has (沪9999) is refused, as the feeds refuse it: answered, it is
    an empty list that reads as "not listed"."""
    if court is not None and not await db.read(court_exists, court):
        raise Problem(400, "unknown_court", "no court has this code", pointer="/query/court")


async def provide_search_query(
    request: Request[Any, Any, Any],
    secrets: Injected[Secrets],
    db: Injected[Database],
    q: Annotated[
        str | None,
        query(f"A name or part of one, in Chinese or pinyin (at most {MAX_QUERY_CHARS} characters)"),
    ] = None,
    id_number: Annotated[
        str | None,
        query("A full number of id_type (a resident ID number: checksum and all, 15 or 18 digits)"),
    ] = None,
    id_type: Annotated[
        str | None,
        query("The id_number's document (default resident_id)", enum=list(PERSON_ID_TYPES)),
    ] = None,
    nationality: Annotated[str | None, query("With a passport: ISO 3166-1 alpha-3, e.g. CAN")] = None,
    credit_code: Annotated[str | None, query("A full unified social credit code: an exact match")] = None,
    organization_code: Annotated[
        str | None, query("A full GB 11714 organisation code (60003734-1): an exact match")
    ] = None,
    registration_country: Annotated[
        str | None, query("A foreign entity's country of registration, ISO 3166-1 alpha-3")
    ] = None,
    registration_number: Annotated[
        str | None, query("A foreign entity's home registration number, with registration_country")
    ] = None,
    province: Annotated[
        str | None, query("Two-digit province code (GB/T 2260)", enum=sorted(PROVINCES))
    ] = None,
    court: Annotated[str | None, query("A court code, e.g. 京0105")] = None,
    kind: Annotated[str | None, query("The debtor's kind", enum=list(KINDS))] = None,
    ground: Annotated[str | None, query("A ground for listing", enum=list(GROUNDS))] = None,
    published_from: Annotated[str | None, query("Published on or after this day", format="date")] = None,
    published_to: Annotated[str | None, query("Published on or before this day", format="date")] = None,
    page: Annotated[
        str | None, query("Page number, from 1", type="integer", minimum=1, maximum=MAX_WINDOW)
    ] = None,
    per_page: Annotated[
        str | None,
        query(f"Hits a page (default {DEFAULT_PER_PAGE})", type="integer", minimum=1, maximum=MAX_PER_PAGE),
    ] = None,
) -> SearchQuery:
    """The search, validated (search.query): a name, an ID number or a credit code, with filters.
    Each parameter may be given once: a repeated one is ambiguous, and refused; so is any
    other parameter, and a court code no court has."""
    refuse_unknown(request, PARAMETERS)
    refuse_repeated(request, PARAMETERS)
    params = {
        "q": q,
        "id_number": id_number,
        "id_type": id_type,
        "nationality": nationality,
        "credit_code": credit_code,
        "organization_code": organization_code,
        "registration_country": registration_country,
        "registration_number": registration_number,
        "province": province,
        "court": court,
        "kind": kind,
        "ground": ground,
        "published_from": published_from,
        "published_to": published_to,
        "page": page,
        "per_page": per_page,
    }
    parsed = parse_query(params, secrets.blind_index)
    await refuse_unknown_court(parsed.court, db)
    if parsed.identifier_blind is not None:
        await charge_number_lookup(request)
    return parsed


SEARCH_PROBLEMS = problems(
    PUBLIC,
    PARAMETER,
    {
        400: (
            "repeated_parameter",
            "query_required",
            "query_too_broad",
            "query_names_no_one",
            "query_too_long",
            "invalid_query",
            "parameter_too_long",
            "control_characters",
            "invalid_id_number",
            "invalid_credit_code",
            "unknown_id_type",
            "invalid_nationality",
            "invalid_organization_code",
            "invalid_registration_country",
            "invalid_registration_number",
            "conflicting_identifiers",
            "incomplete_identifier",
            "invalid_court",
            "unknown_court",
            "unknown_filter",
            "unknown_province",
            "unknown_kind",
            "unknown_ground",
            "invalid_date",
            "invalid_date_range",
            "invalid_page",
            "invalid_per_page",
            "page_out_of_range",
        ),
        503: "search_unavailable",
    },
)


class PublicSearchController(Controller):
    path = "/v1/public/defaulters"
    tags = ("public",)
    # As the search pages: a URL here can carry a full ID number (kept out of referrers and
    # shared caches), and a removed entry must not linger in any cache.
    response_headers = MappingProxyType({"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    @get(
        "/",
        dependencies={"search_query": Provide(provide_search_query)},
        responses=SEARCH_PROBLEMS,
    )
    async def search(
        self, search_query: Injected[SearchQuery], search_index: Injected[SearchIndex]
    ) -> SearchResult:
        """Search the list by name (Chinese, part of it, or pinyin), or by a full ID number or
        credit code; filter by province, court, kind, ground and publication dates.

        Answers `{"hits": [...], "total": N, "facets": {"province": {...}, "ground": {...}},
        "total_exact": true}`. With `total_exact` false there are more than `total` matches
        (too many to count) and the facets are empty; the page is exact all the same.
        """
        return await search_index.search(search_query)

    @get(
        "/{listing_id:str}",
        responses=problems(PUBLIC, PARAMETER, {404: "entry_not_found", 503: "search_unavailable"}),
    )
    async def entry(self, search_index: Injected[SearchIndex], listing_id: Id) -> PublicEntry:
        """One entry of the list, while it is published."""
        found = None
        # Only an id as the registry makes them reaches the engine (and a URL there).
        if is_id(listing_id):
            found = await search_index.get(listing_id)
        if found is None:
            raise Problem(404, "entry_not_found", "no published entry has this id")
        return found
