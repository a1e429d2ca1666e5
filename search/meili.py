"""The Meilisearch implementation (production), with the official `meilisearch` client.

Written against the documented API (settings, documents, search with filter/facets/sort,
tasks, `swap_indexes`); a server cannot be installed on the build machines, so its tests
run only when MEILISEARCH_URL is set.

Same semantics as the embedded index: the name terms of `search.text` are stored, each
spelled in the letters a-p (two per byte of UTF-8), so that Meilisearch's own tokenizer
(which segments Chinese by dictionary) sees exactly our bigrams and single characters as
words. A text query is a *phrase* of those words (consecutive, no typo, no prefix), which is
a true substring, as in the embedded index. Pinyin terms are plain words in their own
attribute. A Latin query matches either a pinyin run (all-Han personal names) or a Latin
substring (names with Latin letters): the two sets cannot overlap, so the adapter runs both
and adds their totals and facets. Filter values come from the validated query only, and
are quoted and escaped all the same.

Writes go to the server while the caller holds the index's cursor in a registry transaction
(`search.interface.SearchEngine`): the follower, the reconciler and a rebuild's swap take
turns, and the cursor moves only once the server has applied the batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import anyio
import meilisearch
import msgspec
from sqlalchemy import Connection, Engine, select

from registry.calendar import today_in_china
from registry.db import create_sync_engine
from registry.eventlog.readers import advance, claim_cursor
from registry.eventlog.services import head
from registry.listings.disclosure import PublicEntry
from registry.listings.models import Listing
from registry.listings.schemas import GROUNDS
from registry.settings import Settings
from search.documents import Document, all_active_documents, hit
from search.interface import SearchQuery, SearchResult
from search.query import MAX_WINDOW
from search.text import TextMatch, text_match

EPOCH = date(1970, 1, 1)
BATCH = 5000
TASK_TIMEOUT_MS = 600_000
_LETTERS = "abcdefghijklmnop"
SETTINGS: dict[str, Any] = {
    "searchableAttributes": ["terms", "pinyin"],
    "displayedAttributes": ["id", "entry", "birth_date"],
    "filterableAttributes": ["id_blind", "kind", "province_code", "court_code", "grounds", "published_on"],
    "sortableAttributes": ["id"],
    # Newest first, like the embedded index; matching is all-or-nothing (phrases).
    "rankingRules": ["sort", "words", "exactness"],
    # The stored words are encodings of exact terms: a typo or a prefix would match others.
    "typoTolerance": {"enabled": False},
    "prefixSearch": "disabled",
    "faceting": {"maxValuesPerFacet": 100},
    "pagination": {"maxTotalHits": MAX_WINDOW},
}


def spell(term: str) -> str:
    return "".join(_LETTERS[b >> 4] + _LETTERS[b & 15] for b in term.encode())


def quote_filter(value: str) -> str:
    """A Meilisearch filter string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def meili_document(doc: Document, id_blind: bytes) -> dict[str, Any]:
    return {
        "id": doc.listing_id,
        "version": doc.version,
        "terms": " ".join(spell(term) for term in doc.terms),
        "pinyin": " ".join(doc.pinyin),
        "id_blind": id_blind.hex(),
        "kind": doc.kind,
        "province_code": doc.province_code,
        "court_code": doc.court_code,
        "grounds": list(doc.grounds),
        "published_on": (doc.published_on - EPOCH).days,
        "birth_date": doc.birth_date.isoformat() if doc.birth_date else None,
        "entry": msgspec.json.decode(doc.entry),
    }


def meili_filter(query: SearchQuery) -> list[str]:
    parts: list[str] = []
    if query.identifier_blind is not None:
        parts.append(f"id_blind = {quote_filter(query.identifier_blind.hex())}")
    for field, value in (
        ("kind", query.kind),
        ("province_code", query.province),
        ("court_code", query.court),
        ("grounds", query.ground),
    ):
        if value is not None:
            parts.append(f"{field} = {quote_filter(value)}")
    if query.published_from is not None:
        parts.append(f"published_on >= {(query.published_from - EPOCH).days}")
    if query.published_to is not None:
        parts.append(f"published_on <= {(query.published_to - EPOCH).days}")
    return parts


def _searches(match: TextMatch | None) -> list[tuple[str, list[str]]]:
    """(q, attributes to search on) for each disjoint part of the match."""
    if match is None:
        return [("", ["terms"])]
    searches = [('"' + " ".join(spell(t) for t in match.phrase) + '"', ["terms"])]
    if match.pinyin is not None:
        searches.append(('"' + match.pinyin + '"', ["pinyin"]))
    return searches


class MeiliIndex:
    """`SearchEngine` over one Meilisearch index (the sync client, run in worker threads).
    `engine`: a synchronous reader engine on the registry database, which a rebuild reads."""

    def __init__(self, client: meilisearch.Client, name: str, engine: Engine) -> None:
        self.client = client
        self.name = name
        self.engine = engine

    @classmethod
    def from_settings(cls, settings: Settings) -> MeiliIndex:
        if not settings.meilisearch.url:
            raise ValueError("REGISTRY_SEARCH_BACKEND=meilisearch needs REGISTRY_MEILISEARCH_URL")
        client = meilisearch.Client(settings.meilisearch.url, settings.meilisearch.api_key, timeout=10)
        return cls(
            client, settings.meilisearch.index, create_sync_engine(settings.database.url, writer=False)
        )

    def close(self) -> None:
        self.engine.dispose()

    @property
    def cursor(self) -> str:
        return f"search.meilisearch.{self.name}"

    async def search(self, query: SearchQuery) -> SearchResult:
        return await anyio.to_thread.run_sync(self.search_sync, query)

    async def get(self, listing_id: str) -> PublicEntry | None:
        return await anyio.to_thread.run_sync(self.get_sync, listing_id)

    def search_sync(self, query: SearchQuery) -> SearchResult:
        if query.text is not None and text_match(query.text) is None:
            return SearchResult(hits=[], total=0, facets={"province": {}, "ground": {}})
        match = text_match(query.text) if query.text is not None else None
        window = query.page * query.per_page
        total = 0
        provinces: dict[str, int] = {}
        grounds: dict[str, int] = {}
        found: list[dict[str, Any]] = []
        index = self.client.index(self.name)
        for q, attributes in _searches(match):
            answer = index.search(
                q,
                {
                    "filter": meili_filter(query),
                    "facets": ["province_code", "grounds"],
                    "sort": ["id:desc"],
                    "attributesToSearchOn": attributes,
                    "page": 1,
                    "hitsPerPage": window,
                },
            )
            total += int(answer["totalHits"])
            distribution = answer.get("facetDistribution", {})
            for value, count in distribution.get("province_code", {}).items():
                provinces[value] = provinces.get(value, 0) + int(count)
            for value, count in distribution.get("grounds", {}).items():
                grounds[value] = grounds.get(value, 0) + int(count)
            found.extend(answer["hits"])
        found.sort(key=lambda item: str(item["id"]), reverse=True)
        today = today_in_china()
        hits = [
            hit(
                msgspec.json.encode(item["entry"]),
                date.fromisoformat(item["birth_date"]) if item.get("birth_date") else None,
                today,
            )
            for item in found[(query.page - 1) * query.per_page : window]
        ]
        facets = {
            "province": dict(sorted(provinces.items())),
            "ground": {g: grounds[g] for g in GROUNDS if grounds.get(g)},
        }
        return SearchResult(hits=hits, total=total, facets=facets)

    def get_sync(self, listing_id: str) -> PublicEntry | None:
        try:
            item = self.client.index(self.name).get_document(listing_id)
        except meilisearch.errors.MeilisearchApiError as exc:
            if exc.code == "document_not_found":
                return None
            raise
        document = dict(item)
        birth = document.get("birth_date")
        return hit(
            msgspec.json.encode(document["entry"]),
            date.fromisoformat(birth) if birth else None,
            today_in_china(),
        )

    # ---- the SearchEngine writes ----

    def apply(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        self.write(self.name, _meili_documents(conn, documents), deleted)

    def repair(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        # Adding a document replaces the stored one whole: nothing stored is trusted.
        self.apply(conn, documents, deleted)

    def stored_versions(self, conn: Connection) -> Iterable[tuple[str, int]]:
        versions: dict[str, int] = {}
        offset = 0
        while True:
            page = self.client.index(self.name).get_documents(
                {"fields": ["id", "version"], "offset": offset, "limit": BATCH}
            )
            for item in page.results:
                versions[str(item.id)] = int(item.version)
            offset += BATCH
            if offset >= page.total:
                return sorted(versions.items())

    def differing(self, conn: Connection, documents: Sequence[Document]) -> list[str]:
        """Meilisearch documents are compared by version only: none differs at its version."""
        return []

    def rebuild(self, writer: Engine, workers: int) -> dict[str, Any]:
        """Into a fresh index from one snapshot of the registry, then swapped in atomically."""
        fresh = f"{self.name}_build_{int(time.time())}"
        self.configure(fresh)
        count = 0
        with self.engine.connect() as conn:
            start, _ = head(conn)
            for chunk in all_active_documents(conn):
                self.write(fresh, _meili_documents(conn, chunk), [])
                count += len(chunk)
        with writer.begin() as conn:
            claim_cursor(conn, self.cursor)
            self.swap_in(fresh)
            advance(conn, self.cursor, start)
        return {"documents": count}

    # ---- the server's side ----

    def _wait(self, task: Any) -> None:
        done = self.client.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
        if done.status != "succeeded":
            raise RuntimeError(f"meilisearch task {task.task_uid} {done.status}: {done.error}")

    def write(self, index_name: str, documents: Sequence[dict[str, Any]], deleted: Sequence[str]) -> None:
        index = self.client.index(index_name)
        if documents:
            self._wait(index.add_documents(list(documents), primary_key="id"))
        if deleted:
            self._wait(index.delete_documents(list(deleted)))

    def configure(self, index_name: str) -> None:
        self._wait(self.client.create_index(index_name, {"primaryKey": "id"}))
        self._wait(self.client.index(index_name).update_settings(SETTINGS))

    def swap_in(self, fresh: str) -> None:
        """Atomically make `fresh` the live index, then drop the old one (now named `fresh`)."""
        try:
            self.client.get_index(self.name)
        except meilisearch.errors.MeilisearchApiError:
            self.configure(self.name)
        self._wait(self.client.swap_indexes([{"indexes": [self.name, fresh]}]))
        self._wait(self.client.delete_index(fresh))


def _meili_documents(conn: Connection, docs: Sequence[Document]) -> list[dict[str, Any]]:
    ids = [doc.listing_id for doc in docs]
    blinds: dict[str, bytes] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(Listing.id, Listing.debtor_id_blind).where(Listing.id.in_(ids[start : start + 500]))
        )
        blinds.update({row.id: bytes(row.debtor_id_blind) for row in rows})
    return [meili_document(doc, blinds[doc.listing_id]) for doc in docs]
