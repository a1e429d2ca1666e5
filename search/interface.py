"""The one search interface of the public list; the embedded and Meilisearch indexes implement it.

Agreed contract between the search core and the public web page (both build on it):
the JSON API `GET /v1/public/defaulters` and the web page call `SearchIndex.search` with a
validated `SearchQuery` and render `SearchResult.hits` (each a `PublicEntry`, the SPC Art. 6
allow-list from `registry.listings.disclosure`).
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import msgspec

from registry.listings.disclosure import PublicEntry

KINDS = ("person", "organization")
FACETS = ("province", "ground")


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Already validated and normalised (NFKC) by the caller's parser."""

    text: str | None = None  # name or part of it, Chinese or pinyin
    identifier_blind: bytes | None = None  # HMAC blind index of a full ID number / credit code
    province: str | None = None  # two-digit province code
    court: str | None = None  # court code, e.g. 京0105
    kind: str | None = None  # one of KINDS
    ground: str | None = None  # one of the six ground codes
    published_from: date | None = None
    published_to: date | None = None
    page: int = 1
    per_page: int = 20


class SearchResult(msgspec.Struct, frozen=True):
    hits: list[PublicEntry]
    total: int
    # {"province": {"11": 12, ...}, "ground": {"able_but_refuses": 40, ...}}
    facets: dict[str, dict[str, int]]


class SearchIndex(Protocol):
    async def search(self, query: SearchQuery) -> SearchResult: ...

    async def get(self, listing_id: str) -> PublicEntry | None: ...
