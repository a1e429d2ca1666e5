"""The Meilisearch implementation (production), with the official `meilisearch` client.

Written against the documented API (version, indexes, settings, documents, search, tasks,
`swap-indexes`); a server cannot be installed on the build machines, so the adapter is tested
against recorded request/response pairs from Meilisearch's documentation
(tests/search/test_meili_contract.py), and against a real server when MEILISEARCH_URL is set.
Supported servers: Meilisearch 1.3 (`attributesToSearchOn`) up to, not including, 2.0;
settings a server does not know are not sent (`prefixSearch` and `facetSearch` from 1.12).

Same semantics as the embedded index: the name terms of `search.text` are stored, each
spelled in the letters a-p (two per byte of UTF-8), so that Meilisearch's own tokenizer
(which segments Chinese by dictionary) sees exactly our bigrams and single characters as
words. A text query is a *phrase* of those words (consecutive, no typo, no prefix). Pinyin
terms are plain words in their own attribute. A Latin query matches either a pinyin run
(all-Han personal names) or a Latin substring (names with Latin letters): the two sets cannot
overlap, so the adapter runs both and merges them. Filter values come from the validated
query only, and are quoted and escaped all the same.

The index is never created by a write: the engine ensures it (primary key, settings for the
server's version) when it starts and before every write, so a document write cannot make an
index with default settings. Newest first means most recently *changed*, as on the embedded
engine: each write gives its documents a higher `rank` than any before.

Two keys: the public search uses `search_key` (search rights only); the writes, the settings
and the version use `api_key`. A server that cannot be reached, answers 5xx, has no index
yet, refuses a key (401/403), or is not a Meilisearch (another service's 404 page) raises
`SearchUnavailable` (503 to the public; the follower backs off); only Meilisearch's refusal
of the request itself (`invalid_request`) stays an error to see.

Writes go to the server while the caller holds the index's cursor in a registry transaction
(`search.interface.SearchEngine`): the follower, the reconciler and a rebuild's swap take
turns, and the cursor moves only once the server has applied the batch.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import anyio
import meilisearch
import msgspec
import requests
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError
from sqlalchemy import Connection, Engine, select

from registry import progress
from registry.db import create_sync_engine
from registry.eventlog.readers import advance, claim_cursor
from registry.eventlog.services import head
from registry.ids import is_id
from registry.listings.disclosure import PublicEntry
from registry.listings.models import Listing
from registry.listings.schemas import GROUNDS
from registry.settings import Settings
from search.documents import Document, all_active_documents, hit
from search.interface import SearchQuery, SearchResult, SearchUnavailable
from search.published import still_published
from search.query import MAX_WINDOW
from search.text import TextMatch, search_form, text_match

logger = logging.getLogger("search.meili")

EPOCH = date(1970, 1, 1)
BATCH = 5000
TASK_TIMEOUT_MS = 600_000
# Meilisearch checks a phrase by the proximity of consecutive word pairs, not by one chain of
# positions: from four bigrams (five characters) on, pairs found in different places of a
# name could pass for the phrase. Such hits are checked against the name itself.
CHECKED_PHRASE_CHARS = 5
MIN_VERSION = (1, 3)
NEXT_MAJOR = (2, 0)
_LETTERS = "abcdefghijklmnop"
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)", re.ASCII)
FACETS = ["province_code", "grounds"]
BASE_SETTINGS: dict[str, Any] = {
    "searchableAttributes": ["terms", "pinyin"],
    "displayedAttributes": ["id", "rank", "entry"],
    # `id`: deletions are by filter (the id list form is deprecated), and one entry is read by a
    # search (the public's key cannot read documents). `rank`: the merged paging of a Latin
    # query counts the hits ranked above a probe.
    "filterableAttributes": [
        "id",
        "id_blind",
        "kind",
        "province_code",
        "court_code",
        "grounds",
        "published_on",
        "rank",
    ],
    "sortableAttributes": ["rank"],
    # Most recently changed first, like the embedded index; matching is all-or-nothing (phrases).
    "rankingRules": ["sort", "words", "exactness"],
    # The stored words are encodings of exact terms: a typo or a prefix would match others.
    "typoTolerance": {"enabled": False},
    "faceting": {"maxValuesPerFacet": 100},
    "pagination": {"maxTotalHits": MAX_WINDOW},
}
# Settings that older servers refuse as unknown fields (the whole update fails): from 1.12.
SETTINGS_FROM_1_12: dict[str, Any] = {"prefixSearch": "disabled", "facetSearch": False}
# Lists of attribute names whose order means nothing to Meilisearch (the server answers them in
# its own order); the others (searchable attributes, ranking rules) are ordered.
UNORDERED_SETTINGS = frozenset(
    {
        "displayedAttributes",
        "filterableAttributes",
        "sortableAttributes",
        "disableOnWords",
        "disableOnAttributes",
    }
)


def parse_version(text: str) -> tuple[int, int, int]:
    found = _VERSION.match(text)
    if found is None:
        raise SearchUnavailable(f"Meilisearch reported an unreadable version {text!r}")
    return int(found[1]), int(found[2]), int(found[3])


def settings_for(version: tuple[int, int, int]) -> dict[str, Any]:
    """The index settings to send to a server of `version` (only what it knows)."""
    if version[:2] < MIN_VERSION:
        raise SearchUnavailable(
            f"Meilisearch {'.'.join(map(str, version))} is older than the supported "
            f"{'.'.join(map(str, MIN_VERSION))}"
        )
    settings = dict(BASE_SETTINGS)
    if version[:2] >= (1, 12):
        settings.update(SETTINGS_FROM_1_12)
    return settings


def settings_in_place(current: Any, wanted: Any, name: str = "") -> bool:
    """Whether the server's settings `current` hold `wanted`. The server answers every
    setting, its defaults filled in, nested objects too: only the keys set are compared, and
    the unordered lists as sets (of names: the granular object form is not what is set)."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(
            key in current and settings_in_place(current[key], value, key) for key, value in wanted.items()
        )
    if isinstance(wanted, list) and name in UNORDERED_SETTINGS:
        return (
            isinstance(current, list)
            and all(isinstance(item, str) for item in current)
            and set(current) == set(wanted)
        )
    return bool(current == wanted)


def spell(term: str) -> str:
    return "".join(_LETTERS[b >> 4] + _LETTERS[b & 15] for b in term.encode())


def quote_filter(value: str) -> str:
    """A Meilisearch filter string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def meili_document(doc: Document, id_blind: bytes, rank: int) -> dict[str, Any]:
    return {
        "id": doc.listing_id,
        "version": doc.version,
        "rank": rank,
        "terms": " ".join(spell(term) for term in doc.terms),
        "pinyin": " ".join(doc.pinyin),
        "id_blind": id_blind.hex(),
        "kind": doc.kind,
        "province_code": doc.province_code,
        "court_code": doc.court_code,
        "grounds": list(doc.grounds),
        "published_on": (doc.published_on - EPOCH).days,
        "entry": msgspec.json.decode(doc.entry),
    }


def meili_filter(query: SearchQuery) -> list[str]:
    parts: list[str] = []
    if query.identifier_blind is not None:
        blinds = [query.identifier_blind, query.identifier_blind_retiring]
        # During a blind-index key rotation a document may not be re-indexed yet.
        either = " OR ".join(f"id_blind = {quote_filter(b.hex())}" for b in blinds if b is not None)
        parts.append(f"({either})" if query.identifier_blind_retiring is not None else either)
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


def ids_filter(listing_ids: Sequence[str]) -> str:
    return "id IN [" + ", ".join(quote_filter(listing_id) for listing_id in listing_ids) + "]"


def _searches(match: TextMatch | None) -> list[tuple[str, list[str]]]:
    """(q, attributes to search on) for each disjoint part of the match."""
    if match is None:
        return [("", ["terms"])]
    searches = [('"' + " ".join(spell(t) for t in match.phrase) + '"', ["terms"])]
    if match.pinyin is not None:
        searches.append(('"' + match.pinyin + '"', ["pinyin"]))
    return searches


def refused_request(exc: MeilisearchApiError) -> bool:
    """Whether an error answer is Meilisearch refusing the adapter's own request (a bad
    filter, a bad setting: `invalid_request`, a bug to see). Everything else makes the engine
    unusable until its server or an operator acts: a 5xx, no index yet, a key refused
    (`auth`: 401 `missing_authorization_header`, 403 `invalid_api_key`), and any answer that
    is not a Meilisearch error at all (another service at the URL: a 404 page)."""
    return (
        exc.status_code < 500
        and exc.code is not None
        and exc.type == "invalid_request"
        and exc.code != "index_not_found"
    )


def unavailable_reason(what: str, exc: MeilisearchApiError) -> str:
    """The operator's reason: the status and Meilisearch's error code, never the message
    (nor a key: neither is in either)."""
    if exc.code is None:
        return (
            f"{what}: the server answered HTTP {exc.status_code} without a Meilisearch error "
            "(is REGISTRY_MEILISEARCH_URL a Meilisearch server?)"
        )
    return f"{what}: Meilisearch answered {exc.status_code} {exc.code}"


@contextmanager
def reaching(what: str) -> Iterator[None]:
    """Errors of a server that is down, overloaded, not set up, refusing the keys, or not a
    Meilisearch at all become `SearchUnavailable`; a 4xx about the request itself stays a
    bug to see (`refused_request`)."""
    try:
        yield
    except (MeilisearchCommunicationError, MeilisearchTimeoutError) as exc:
        raise SearchUnavailable(f"{what}: Meilisearch cannot be reached ({type(exc).__name__})") from exc
    except MeilisearchApiError as exc:
        if refused_request(exc):
            raise
        raise SearchUnavailable(unavailable_reason(what, exc)) from exc
    except requests.exceptions.JSONDecodeError as exc:
        # A 2xx that is not JSON: another service at the URL (a web server's default page).
        raise SearchUnavailable(
            f"{what}: the server answered something other than JSON "
            "(is REGISTRY_MEILISEARCH_URL a Meilisearch server?)"
        ) from exc


class MeiliIndex:
    """`SearchEngine` over one Meilisearch index (the sync client, run in worker threads).
    `admin`: a client with the index rights (writes, settings, version); `searcher`: one with
    search rights only, for the public. `engine`: a synchronous reader engine on the registry
    database, which a rebuild reads."""

    def __init__(
        self,
        admin: meilisearch.Client,
        name: str,
        engine: Engine,
        *,
        searcher: meilisearch.Client | None = None,
    ) -> None:
        self.admin = admin
        self.searcher = searcher or admin
        self.name = name
        self.engine = engine
        self.version: tuple[int, int, int] | None = None
        self._last_rank = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> MeiliIndex:
        meili = settings.meilisearch
        if not meili.url:
            raise ValueError("REGISTRY_SEARCH_BACKEND=meilisearch needs REGISTRY_MEILISEARCH_URL")
        if meili.api_key and not meili.search_key:
            raise ValueError(
                "REGISTRY_MEILISEARCH_SEARCH_KEY is not set: the public search never uses "
                "REGISTRY_MEILISEARCH_API_KEY, the key with index rights"
            )
        timeout = meili.timeout_seconds
        index = cls(
            meilisearch.Client(meili.url, meili.api_key, timeout=timeout),
            meili.index,
            create_sync_engine(settings.database.url, writer=False),
            searcher=meilisearch.Client(meili.url, meili.search_key, timeout=timeout),
        )
        if meili.api_key or not meili.search_key:
            index.start()
        return index

    def start(self) -> None:
        """Ensure the index at start; a server that is down is reported (once) and left to
        readiness and the follower's back-off: a process starts without it."""
        try:
            self.ensure()
        except SearchUnavailable as exc:
            logger.warning("search engine unavailable at start: %s", exc.reason)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def cursor(self) -> str:
        return f"search.meilisearch.{self.name}"

    async def search(self, query: SearchQuery) -> SearchResult:
        return await anyio.to_thread.run_sync(self.search_sync, query)

    async def get(self, listing_id: str) -> PublicEntry | None:
        return await anyio.to_thread.run_sync(self.get_sync, listing_id)

    async def ready(self) -> str | None:
        return await anyio.to_thread.run_sync(self.ready_sync)

    def ready_sync(self) -> str | None:
        try:
            with reaching("readiness"):
                # `/health` needs no key; the index itself, read with the public's key.
                self.searcher.health()
                self.searcher.index(self.name).search("", {"limit": 0})
        except SearchUnavailable as exc:
            return exc.reason
        return None

    # ---- reads ----

    def search_sync(self, query: SearchQuery) -> SearchResult:
        match = text_match(query.text) if query.text is not None else None
        if query.text is not None and match is None:
            return SearchResult(hits=[], total=0, facets={"province": {}, "ground": {}})
        index = self.searcher.index(self.name)
        base = {
            "filter": meili_filter(query),
            "sort": ["rank:desc"],
            "attributesToRetrieve": ["id", "rank", "entry"],
        }
        searches = [(q, {**base, "attributesToSearchOn": on}) for q, on in _searches(match)]
        offset, limit = (query.page - 1) * query.per_page, query.per_page
        with reaching("search"):
            if len(searches) == 1:
                q, params = searches[0]
                # Page form: exactly this page, with the exhaustive total and facets.
                answer = index.search(
                    q, {**params, "facets": FACETS, "page": query.page, "hitsPerPage": query.per_page}
                )
                answers = [answer]
                found = list(answer["hits"])
            else:
                answers = [
                    index.search(q, {**params, "facets": FACETS, "page": 1, "hitsPerPage": 0})
                    for q, params in searches
                ]
                totals = [int(answer["totalHits"]) for answer in answers]
                found = self._merged_page(index, searches, totals, offset, limit)
        total = sum(int(answer["totalHits"]) for answer in answers)
        provinces: dict[str, int] = {}
        grounds: dict[str, int] = {}
        for answer in answers:
            distribution = answer.get("facetDistribution", {})
            for value, count in distribution.get("province_code", {}).items():
                provinces[value] = provinces.get(value, 0) + int(count)
            for value, count in distribution.get("grounds", {}).items():
                grounds[value] = grounds.get(value, 0) + int(count)
        if match is not None and len(search_form(query.text or "")) >= CHECKED_PHRASE_CHARS:
            kept = [item for item in found if _true_match(item, match)]
            total -= len(found) - len(kept)
            found = kept
        with self.engine.connect() as conn:
            hits = still_published(conn, [hit(msgspec.json.encode(item["entry"])) for item in found])
        facets = {
            "province": dict(sorted(provinces.items())),
            "ground": {g: grounds[g] for g in GROUNDS if grounds.get(g)},
        }
        return SearchResult(hits=hits, total=total, facets=facets)

    def _merged_page(
        self,
        index: Any,
        searches: list[tuple[str, dict[str, Any]]],
        totals: list[int],
        offset: int,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Hits `offset`..`offset + limit` of two disjoint searches merged by rank, asking each
        for one page: the split of the first `offset` hits between them is found by bisection
        (each probe reads one rank and counts the other side's higher ranks)."""
        (q_a, a), (q_b, b) = searches
        if totals[1] == 0 or totals[0] == 0:
            q, params = searches[0] if totals[1] == 0 else searches[1]
            return list(index.search(q, {**params, "offset": offset, "limit": limit})["hits"])

        def rank_at(q: str, params: dict[str, Any], position: int) -> int:
            hits = index.search(q, {**params, "offset": position, "limit": 1})["hits"]
            return int(hits[0]["rank"])

        def above(q: str, params: dict[str, Any], rank: int) -> int:
            counted = {**params, "filter": [*params["filter"], f"rank > {rank}"], "page": 1, "hitsPerPage": 0}
            return int(index.search(q, counted)["totalHits"])

        # The largest x (hits taken from a) such that a's x-th hit ranks among the first offset.
        low, high = max(0, offset - totals[1]), min(offset, totals[0])
        while low < high:
            x = (low + high + 1) // 2
            if x - 1 + above(q_b, b, rank_at(q_a, a, x - 1)) < offset:
                low = x
            else:
                high = x - 1
        page_a = index.search(q_a, {**a, "offset": low, "limit": limit})["hits"]
        page_b = index.search(q_b, {**b, "offset": offset - low, "limit": limit})["hits"]
        merged = sorted([*page_a, *page_b], key=lambda item: int(item["rank"]), reverse=True)
        return merged[:limit]

    def get_sync(self, listing_id: str) -> PublicEntry | None:
        if not is_id(listing_id):
            return None
        # A search, not a document read: the public's key has the `search` action only, and
        # `GET /indexes/{uid}/documents/{id}` needs `documents.get`.
        params = {
            "filter": [f"id = {quote_filter(listing_id)}"],
            "limit": 1,
            "attributesToRetrieve": ["entry"],
        }
        with reaching("get"):
            found = self.searcher.index(self.name).search("", params)["hits"]
        if not found:
            return None
        with self.engine.connect() as conn:
            current = still_published(conn, [hit(msgspec.json.encode(found[0]["entry"]))])
        return current[0] if current else None

    # ---- the SearchEngine writes ----

    def apply(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        self.ensure()
        self.write(self.name, _meili_documents(conn, documents, self.next_ranks(len(documents))), deleted)

    def repair(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        # Adding a document replaces the stored one whole: nothing stored is trusted.
        self.apply(conn, documents, deleted)

    def stored_versions(self, conn: Connection) -> Iterable[tuple[str, int]]:
        self.ensure()
        versions: dict[str, int] = {}
        offset = 0
        with reaching("stored versions"):
            while True:
                page = self.admin.index(self.name).get_documents(
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
        """Into a fresh index from one snapshot of the registry, then swapped in atomically.
        Ranks follow listing ids (publication order), below every later write's."""
        self.ensure()
        fresh = f"{self.name}_build_{int(time.time())}"
        self.configure(fresh)
        count = 0
        with self.engine.connect() as conn:
            start, _ = head(conn)
            for chunk in all_active_documents(conn):
                self.write(fresh, _meili_documents(conn, chunk, range(count + 1, count + 1 + len(chunk))), [])
                count += len(chunk)
                progress.advance(len(chunk))
        with writer.begin() as conn:
            claim_cursor(conn, self.cursor)
            self.swap_in(fresh)
            advance(conn, self.cursor, start)
        return {"documents": count}

    def next_ranks(self, count: int) -> range:
        """Ranks above every earlier write's (microseconds, kept increasing in this process;
        writes of different processes take turns on the cursor)."""
        first = max(time.time_ns() // 1000, self._last_rank + 1)
        self._last_rank = first + count - 1
        return range(first, first + count)

    # ---- the server's side ----

    def _wait(self, task: Any) -> None:
        done = self.admin.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
        if done.status != "succeeded":
            raise RuntimeError(f"meilisearch task {task.task_uid} {done.status}: {done.error}")

    def ensure(self) -> None:
        """The live index exists with this service's settings for the server's version: made
        if missing, its settings sent if they differ. Before every write."""
        with reaching("ensure index"):
            self.version = parse_version(str(self.admin.get_version()["pkgVersion"]))
            if self.version[:2] >= NEXT_MAJOR:
                logger.warning("Meilisearch %s is newer than the supported 1.x", self.version)
            wanted = settings_for(self.version)
            try:
                self.admin.get_raw_index(self.name)
            except MeilisearchApiError as exc:
                if exc.code != "index_not_found":
                    raise
                self.configure(self.name)
                return
            current = self.admin.index(self.name).get_settings()
            if not settings_in_place(current, wanted):
                self._wait(self.admin.index(self.name).update_settings(wanted))

    def write(self, index_name: str, documents: Sequence[dict[str, Any]], deleted: Sequence[str]) -> None:
        index = self.admin.index(index_name)
        with reaching("write"):
            if documents:
                self._wait(index.add_documents(list(documents), primary_key="id"))
            for start in range(0, len(deleted), BATCH):
                self._wait(index.delete_documents(filter=ids_filter(deleted[start : start + BATCH])))

    def configure(self, index_name: str) -> None:
        assert self.version is not None, "ensure() reads the version first"
        with reaching("configure"):
            self._wait(self.admin.create_index(index_name, {"primaryKey": "id"}))
            self._wait(self.admin.index(index_name).update_settings(settings_for(self.version)))

    def swap_in(self, fresh: str) -> None:
        """Atomically make `fresh` the live index, then drop the old one (now named `fresh`)."""
        with reaching("swap"):
            self._wait(self.admin.swap_indexes([{"indexes": [self.name, fresh]}]))
            self._wait(self.admin.delete_index(fresh))


def _true_match(item: dict[str, Any], match: TextMatch) -> bool:
    """Whether a hit's name holds the query's characters in a row. A hit of the pinyin search
    (an all-Han name, for a Latin query) matched one stored word whole: nothing to re-check."""
    name = search_form(str(item["entry"].get("name", "")))
    if match.pinyin is not None and not any(ch.isascii() for ch in name):
        return True
    return match.phrase[0] + "".join(term[1:] for term in match.phrase[1:]) in name


def _meili_documents(
    conn: Connection, docs: Sequence[Document], ranks: Iterable[int]
) -> list[dict[str, Any]]:
    ids = [doc.listing_id for doc in docs]
    blinds: dict[str, bytes] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(Listing.id, Listing.debtor_id_blind).where(Listing.id.in_(ids[start : start + 500]))
        )
        blinds.update({row.id: bytes(row.debtor_id_blind) for row in rows})
    return [meili_document(doc, blinds[doc.listing_id], rank) for doc, rank in zip(docs, ranks, strict=True)]
