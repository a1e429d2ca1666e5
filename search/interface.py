"""The one search interface of the public list; the embedded and Meilisearch engines implement it.

Agreed contract between the search core and the public web page (both build on it):
the JSON API `GET /v1/public/defaulters` and the web page call `SearchIndex.search` with a
validated `SearchQuery` and render `SearchResult.hits` (each a `PublicEntry`, the SPC Art. 6
allow-list from `registry.listings.disclosure`).

`SearchEngine` adds the writes, as yente's SearchProvider does, so that one follower of the
log, one reconciler and one reindex command (`search.indexer`) serve every engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from registry.listings.disclosure import PublicEntry
from registry.problems import Problem

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from search.documents import Document

KINDS = ("person", "organization")
FACETS = ("province", "ground")


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Already validated and normalised (NFKC) by the caller's parser."""

    text: str | None = None  # name or part of it, Chinese or pinyin
    identifier_blind: bytes | None = None  # HMAC blind index of a full ID number / credit code
    # The same under the retiring blind-index key, while a key rotation is under way.
    identifier_blind_retiring: bytes | None = None
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
    # With `total_exact` false, a lower bound: there are more matches than this many, and
    # the facets (which would need every match counted) are empty.
    total: int
    # {"province": {"11": 12, ...}, "ground": {"able_but_refuses": 40, ...}}
    facets: dict[str, dict[str, int]]
    total_exact: bool = True


# Seconds a client is told to wait when the engine is down: long enough for a restart.
UNAVAILABLE_RETRY_SECONDS = 30


class SearchUnavailable(Problem):
    """The engine cannot answer (its server is down, unreachable, or of a version this service
    does not support): 503 `search_unavailable` with `Retry-After`, never a 500. `reason` is
    for the operator's log; the public sees only that search is down for a while."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            503,
            "search_unavailable",
            "public search is unavailable for a moment; retry shortly",
            extra={"retry_after": UNAVAILABLE_RETRY_SECONDS},
        )
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.reason,))


class SearchIndex(Protocol):
    async def search(self, query: SearchQuery) -> SearchResult: ...

    async def get(self, listing_id: str) -> PublicEntry | None: ...

    async def ready(self) -> str | None:
        """None when the engine can answer searches now; otherwise why not (for /readyz)."""


class SearchEngine(SearchIndex, Protocol):
    """An index with the writes that keep it in step with the registry.

    `conn` is the caller's write transaction on the registry database, in which the caller
    has claimed the engine's `cursor` (`registry.eventlog.readers.claim_cursor`): the
    follower, the reconciler and a rebuild's swap never interleave. An engine that lives in
    the registry database writes in that transaction; one beside it writes before it commits.
    """

    @property
    def cursor(self) -> str:
        """The engine's reader cursor in `reader_cursors`."""

    def apply(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        """Upsert `documents`, delete the documents of the `deleted` listing ids (the
        follower's changes). Idempotent: changes applied twice leave the same index."""

    def repair(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        """As `apply`, trusting nothing stored: rewrite each document whole (the reconciler's)."""

    def stored_versions(self, conn: Connection) -> Iterable[tuple[str, int]]:
        """(listing id, version) of every stored document, in listing-id order."""

    def differing(self, conn: Connection, documents: Sequence[Document]) -> list[str]:
        """The listing ids among `documents`, each stored at its version, whose stored
        document is not this one (`registry search reconcile --deep`)."""

    def rebuild(self, writer: Engine, workers: int) -> dict[str, Any]:
        """Build every document anew into an index the public does not see until it is
        swapped in at the end, in a transaction of `writer` that claims the cursor and sets it
        to the log head read before the build (what changed meanwhile is replayed). `workers`:
        processes that may build documents. Returns {"documents": count, ...figures}."""

    def close(self) -> None: ...
