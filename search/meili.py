"""The Meilisearch implementation (production), with the official `meilisearch` client.

Written against the documented API (version, indexes, settings, documents, search, tasks,
`swap-indexes`); a server cannot be installed on the build machines, so the adapter is tested
against recorded request/response pairs from Meilisearch's documentation
(tests/search/test_meili_contract.py), and against a real server when MEILISEARCH_URL is set.
Supported servers: Meilisearch 1.3 (`attributesToSearchOn`) up to, not including, 2.0;
settings a server does not know are not sent (`proximityPrecision` from 1.6, `searchCutoffMs`
from 1.8, `prefixSearch` and `facetSearch` from 1.12).

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
index with default settings. Nor is it made again, empty, once the registry has indexed into
it: an index lost behind the registry's back (deleted, or a Meilisearch restarted on an empty
volume) or replaced by another (its `createdAt` is not the one the registry recorded) is the
engine unavailable, and the worker's `search_restore` job rebuilds it. Newest first means
most recently *changed*, as on the embedded engine: each write gives its documents a higher
`rank` than any before.

Two keys: the public search uses `search_key` (search rights, and `version` for readiness);
the writes, the settings and the version use `api_key`. A server that cannot be reached,
answers 5xx, has no index yet, refuses a key (401/403), is not a Meilisearch (another
service's 404 page), fails a task, or refuses a query for want of the index's settings
raises `SearchUnavailable` (503 to the public; the follower backs off); only Meilisearch's
refusal of another request of the adapter's (`invalid_request`) stays an error to see.

Writes go to the server while the caller holds the index's cursor in a registry transaction
(`search.interface.SearchEngine`): the follower, the reconciler and a rebuild's swap take
turns, and the cursor moves only once the server has applied the batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import anyio
import meilisearch
import msgspec
import requests
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError
from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.exc import SQLAlchemyError

from registry import progress
from registry.db import create_sync_engine, dialect_insert
from registry.eventlog.models import ReaderCursor
from registry.eventlog.readers import advance, claim_cursor, read_events
from registry.eventlog.services import head
from registry.eventlog.types import LISTING_EVENTS
from registry.ids import is_id
from registry.listings.disclosure import PublicEntry
from registry.listings.models import Listing
from registry.listings.schemas import GROUNDS
from registry.settings import Settings
from registry.timeutil import utcnow
from search.documents import Document, all_active_documents, hit, load_documents
from search.interface import SearchQuery, SearchResult, SearchUnavailable
from search.published import still_published
from search.query import MAX_WINDOW
from search.text import TextMatch, search_form, text_match

logger = logging.getLogger("search.meili")

EPOCH = date(1970, 1, 1)
BATCH = 5000
# Meilisearch refuses a request body over its payload limit (100 MB by default) with 413
# `payload_too_large`: documents are added in requests of at most BATCH documents and this
# many bytes (as the client serializes them), as deletions go BATCH ids at a time.
PAYLOAD_BYTES = 20 * 1024 * 1024
TASK_TIMEOUT_MS = 600_000
# Meilisearch checks a phrase by the proximity of consecutive word pairs, not by one chain of
# positions: from four bigrams (five characters) on, pairs found in different places of a
# name could pass for the phrase. Such hits are checked against the name itself.
CHECKED_PHRASE_CHARS = 5
# Candidates of such a phrase read whole (id, rank, and the entry's name, province and
# grounds) so that its total, facets and pages count true matches only, the same on every
# page: the embedded engine's default count limit. Past it the total is a lower bound.
CHECK_LIMIT = 1000
MIN_VERSION = (1, 3)
NEXT_MAJOR = (2, 0)
# Unset, Meilisearch stops sorting a search after 1,500 ms and answers what it has: a page
# silently short of the newest matches. Set above the client's timeout (10 s by default), a
# search that slow ends as a timeout (503), never as a partial answer.
SEARCH_CUTOFF_MS = 20_000
# Readiness reads the version and probes the query settings (two round trips) at most this
# often per process while they are fine; a failure is checked again at the next call.
READY_TTL_SECONDS = 10.0
# How long a process trusts what it read of the index's mark (lost or not) in the registry.
MARK_TTL_SECONDS = 5.0
# The index mark's value while the live index is lost and a rebuild is due (`MeiliIndex.mark`).
LOST = -1
# The worker's job that rebuilds a lost index (`search.runtime`).
RESTORE_JOB = "search_restore"
# Events per step of the catch-up a rebuild makes before its swap.
CATCH_UP_EVENTS = 5000
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
    # One past the deepest page: a count that reaches it says "more than MAX_WINDOW"
    # (`total_exact` false), as the embedded engine says past its count limit.
    "pagination": {"maxTotalHits": MAX_WINDOW + 1},
}
# Settings that older servers refuse as unknown fields (the whole update fails), by version.
# 1.6: the phrase check relies on word (not attribute) proximity, the default, pinned.
SETTINGS_FROM_1_6: dict[str, Any] = {"proximityPrecision": "byWord"}
SETTINGS_FROM_1_8: dict[str, Any] = {"searchCutoffMs": SEARCH_CUTOFF_MS}
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
# A query refused for an attribute the index does not filter, sort, facet or search on, or for
# a parameter the server does not know (older than 1.3): the index's settings or the server
# are not what the queries need. Not the public's fault nor a page to fail with a 500: 503
# until the worker's ensure (or an operator) puts them right.
NOT_SET_UP = frozenset(
    {
        "invalid_search_filter",
        "invalid_search_sort",
        "invalid_search_facets",
        "invalid_search_attributes_to_search_on",
        "bad_request",
    }
)
# Readiness: a search that uses every setting the queries need (each filterable attribute,
# the sort, the facets, both searchable attributes) and matches nothing.
PROBE: dict[str, Any] = {
    "filter": [f'{name} = ""' for name in BASE_SETTINGS["filterableAttributes"]],
    "sort": ["rank:desc"],
    "facets": FACETS,
    "attributesToSearchOn": ["terms", "pinyin"],
    "page": 1,
    "hitsPerPage": 0,
}
# What a checked phrase's candidates are read with (nested fields by dot notation).
_CANDIDATE_FIELDS = ["id", "rank", "entry.name", "entry.province_code", "entry.grounds"]


def parse_version(text: str) -> tuple[int, int, int]:
    found = _VERSION.match(text)
    if found is None:
        raise SearchUnavailable(f"Meilisearch reported an unreadable version {text!r}")
    return int(found[1]), int(found[2]), int(found[3])


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def unsupported(version: tuple[int, int, int]) -> str | None:
    """Why a server of `version` is outside the supported range, or None."""
    if version[:2] < MIN_VERSION:
        return f"Meilisearch {_dotted(version)} is older than the supported {_dotted(MIN_VERSION)}"
    if version[:2] >= NEXT_MAJOR:
        return (
            f"Meilisearch {_dotted(version)} is outside the tested range "
            f"({_dotted(MIN_VERSION)} up to, not including, {_dotted(NEXT_MAJOR)})"
        )
    return None


def settings_for(version: tuple[int, int, int]) -> dict[str, Any]:
    """The index settings to send to a server of `version` (only what it knows)."""
    if version[:2] < MIN_VERSION:
        raise SearchUnavailable(unsupported(version) or "")
    settings = dict(BASE_SETTINGS)
    for since, added in (
        ((1, 6), SETTINGS_FROM_1_6),
        ((1, 8), SETTINGS_FROM_1_8),
        ((1, 12), SETTINGS_FROM_1_12),
    ):
        if version[:2] >= since:
            settings.update(added)
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
    for field_name, value in (
        ("kind", query.kind),
        ("province_code", query.province),
        ("court_code", query.court),
        ("grounds", query.ground),
    ):
        if value is not None:
            parts.append(f"{field_name} = {quote_filter(value)}")
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


def _batches(documents: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """`documents` in requests of at most BATCH documents and PAYLOAD_BYTES (a document
    larger than that alone goes alone)."""
    batch: list[dict[str, Any]] = []
    size = 2  # "[]"
    for document in documents:
        # The client sends json.dumps(documents): Chinese as \\u escapes, ", " between items.
        length = len(json.dumps(document)) + 2
        if batch and (len(batch) == BATCH or size + length > PAYLOAD_BYTES):
            yield batch
            batch, size = [], 2
        batch.append(document)
        size += length
    if batch:
        yield batch


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
def reaching(what: str, *, query: bool = False) -> Iterator[None]:
    """Errors of a server that is down, overloaded, not set up, refusing the keys, or not a
    Meilisearch at all become `SearchUnavailable`; a 4xx about the request itself stays a
    bug to see (`refused_request`), except, for a `query`, a refusal that says the index's
    settings or the server's version are not what the queries need (`NOT_SET_UP`)."""
    try:
        yield
    except (MeilisearchCommunicationError, MeilisearchTimeoutError) as exc:
        raise SearchUnavailable(f"{what}: Meilisearch cannot be reached ({type(exc).__name__})") from exc
    except MeilisearchApiError as exc:
        if query and exc.code in NOT_SET_UP:
            raise SearchUnavailable(
                f"{unavailable_reason(what, exc)}: the index's settings are not what the queries "
                f"need, or the server is older than {_dotted(MIN_VERSION)} (a worker's start, or "
                "`registry search reindex`, sets them)"
            ) from exc
        if refused_request(exc):
            raise
        raise SearchUnavailable(unavailable_reason(what, exc)) from exc
    except requests.exceptions.JSONDecodeError as exc:
        # A 2xx that is not JSON: another service at the URL (a web server's default page).
        raise SearchUnavailable(
            f"{what}: the server answered something other than JSON "
            "(is REGISTRY_MEILISEARCH_URL a Meilisearch server?)"
        ) from exc


class TaskFailed(SearchUnavailable):
    """A task Meilisearch accepted and then failed (or that was canceled): the engine cannot
    take the write until its server or an operator acts (disk full, a lost index, ...). The
    reason names the task's error code and type, never its message (it can quote a document)."""

    def __init__(self, what: str, task: Any) -> None:
        error = task.error if isinstance(task.error, dict) else {}
        self.task_code: str | None = error.get("code")
        kind = f"{self.task_code} (type {error.get('type')})" if self.task_code else "no error code"
        super().__init__(f"{what}: Meilisearch task {task.uid} ({task.type}) {task.status}: {kind}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (SearchUnavailable, (self.reason,))


def _row(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(ReaderCursor.position).where(ReaderCursor.name == name)).scalar()
    return None if found is None else int(found)


def _set_row(conn: Connection, name: str, value: int | None) -> None:
    """A row of the registry's own beside the cursor in `reader_cursors` (no reader claims
    it): set to `value`, or deleted (None)."""
    if value is None:
        conn.execute(delete(ReaderCursor).where(ReaderCursor.name == name))
        return
    now = utcnow()
    conn.execute(
        dialect_insert(conn, ReaderCursor)
        .values(name=name, position=value, updated_at=now)
        .on_conflict_do_update(index_elements=["name"], set_={"position": value, "updated_at": now})
    )


def _decoded(version: int) -> tuple[int, int, int]:
    return version // 1_000_000, version // 1_000 % 1_000, version % 1_000


def identity(info: dict[str, Any] | None) -> int | None:
    """What tells one index from another of the same name: its `createdAt` (a swap moves it
    with the documents), as a positive number for the registry's mark; None if unknown."""
    created = (info or {}).get("createdAt")
    if not isinstance(created, str) or not created:
        return None
    return int.from_bytes(hashlib.blake2b(created.encode(), digest_size=8).digest(), "big") >> 2 or 1


class MeiliIndex:
    """`SearchEngine` over one Meilisearch index (the sync client, run in worker threads).
    `admin`: a client with the index rights (writes, settings, version); `searcher`: one with
    search rights only, for the public. `engine`: a synchronous reader engine on the registry
    database, which a rebuild reads.

    The *mark* (`mark_name`, a row beside the cursor in `reader_cursors`) records which index
    the registry built: the identity of the live index since the registry made, adopted or
    swapped it in, or LOST while it is missing or replaced and a rebuild is due. Every process
    reads it (web processes cannot read an index's `createdAt` with the search key)."""

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
        # A process with only the search key reads the version with it (or, if the key lacks
        # the `version` action, as the worker recorded it); one with the admin key, or
        # without keys at all, with that one.
        self._version_reader = self.searcher if searcher and not admin.config.api_key else admin
        self._ready_until = 0.0
        self._ready_reason: str | None = None
        self._lost_until = 0.0
        self._lost = False
        self._recorded_version: tuple[int, int, int] | None = None
        self._warned_version: tuple[int, int, int] | None = None

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
        """Ensure the index at start; a server that is down (or an index lost) is reported
        (once) and left to readiness, the follower's back-off and the restore job: a process
        starts without it."""
        try:
            self.ensure()
        except SearchUnavailable as exc:
            logger.warning("search engine unavailable at start: %s", exc.reason)
        except SQLAlchemyError as exc:  # the mark unreadable: the registry database is down
            logger.warning("search engine not checked at start: registry database (%s)", type(exc).__name__)

    def close(self) -> None:
        self.engine.dispose()

    @property
    def cursor(self) -> str:
        return f"search.meilisearch.{self.name}"

    @property
    def mark_name(self) -> str:
        return f"{self.cursor}.index"

    @property
    def version_name(self) -> str:
        """The server's version as the worker last read it (for web processes' readiness)."""
        return f"{self.cursor}.server"

    async def search(self, query: SearchQuery) -> SearchResult:
        return await anyio.to_thread.run_sync(self.search_sync, query)

    async def get(self, listing_id: str) -> PublicEntry | None:
        return await anyio.to_thread.run_sync(self.get_sync, listing_id)

    async def ready(self) -> str | None:
        return await anyio.to_thread.run_sync(self.ready_sync)

    def ready_sync(self) -> str | None:
        """None when searches can be answered now; otherwise why not. One log line when the
        reason changes (`/readyz` names only the check)."""
        reason = self._readiness()
        if reason != self._ready_reason:
            if reason is not None:
                logger.warning("search engine not ready: %s", reason)
            elif self._ready_reason is not None:
                logger.warning("search engine ready again")
            self._ready_reason = reason
        return reason

    def _readiness(self) -> str | None:
        try:
            with reaching("readiness", query=True):
                # `/health` needs no key; the rest is cached a while once fine.
                self.searcher.health()
                self._refuse_if_lost()
                now = time.monotonic()
                if now < self._ready_until:
                    return None
                version = self._server_version()
                if (why := unsupported(version)) is not None:
                    raise SearchUnavailable(f"readiness: {why}")
                self.searcher.index(self.name).search("", PROBE)
                self._ready_until = now + READY_TTL_SECONDS
        except SearchUnavailable as exc:
            self._ready_until = 0.0
            return exc.reason
        return None

    def _server_version(self) -> tuple[int, int, int]:
        """The server's version, read with this process's key; a web process whose search key
        lacks the `version` action (the key docs/operations.md made before) takes the one the
        worker recorded in the registry (`check_index`, every RESTORE_SECONDS)."""
        try:
            return parse_version(str(self._version_reader.get_version()["pkgVersion"]))
        except MeilisearchApiError as exc:
            if self._version_reader is not self.searcher or exc.status_code not in (401, 403):
                raise
            if self._recorded_version is None:
                raise SearchUnavailable(
                    f"{unavailable_reason('readiness', exc)} for GET /version, and no worker has "
                    "recorded the server's version yet (or give the search key the `version` action)"
                ) from exc
            return self._recorded_version

    def _refuse_if_lost(self) -> None:
        """SearchUnavailable while the registry marks the index lost (read at most every
        MARK_TTL_SECONDS): a replaced index may answer, and must not be believed."""
        now = time.monotonic()
        if now >= self._lost_until:
            with self.engine.connect() as conn:
                self._lost = self._state(conn)[1] == LOST
                recorded = _row(conn, self.version_name)
            self._recorded_version = None if recorded is None else _decoded(recorded)
            self._lost_until = now + MARK_TTL_SECONDS
        if self._lost:
            raise SearchUnavailable(
                f"the index {self.name!r} was lost or replaced behind the registry's back; the "
                f"worker's `{RESTORE_JOB}` job is rebuilding it"
            )

    # ---- reads ----

    def search_sync(self, query: SearchQuery) -> SearchResult:
        match = text_match(query.text) if query.text is not None else None
        if query.text is not None and match is None:
            return SearchResult(hits=[], total=0, facets={"province": {}, "ground": {}})
        self._refuse_if_lost()
        index = self.searcher.index(self.name)
        base = {
            "filter": meili_filter(query),
            "sort": ["rank:desc"],
            "attributesToRetrieve": ["id", "rank", "entry"],
        }
        searches = [(q, {**base, "attributesToSearchOn": on}) for q, on in _searches(match)]
        checked = match is not None and len(search_form(query.text or "")) >= CHECKED_PHRASE_CHARS
        offset, limit = (query.page - 1) * query.per_page, query.per_page
        with reaching("search", query=True):
            if len(searches) == 1 and not checked:
                q, params = searches[0]
                # Page form: exactly this page, with the total (up to maxTotalHits) and facets.
                answer = index.search(
                    q, {**params, "facets": FACETS, "page": query.page, "hitsPerPage": query.per_page}
                )
                parts: list[_Part] = [_counted(index, q, params, answer)]
                found = list(answer["hits"])
            else:
                # Only the `terms` search holds phrases to check: pinyin hits are all-Han names
                # that matched one stored word whole.
                parts = [
                    _checked(index, q, params, match)
                    if checked and match is not None and params["attributesToSearchOn"] == ["terms"]
                    else _counted(index, q, params, None)
                    for q, params in searches
                ]
                if len(parts) == 1:
                    found = parts[0].page(offset, limit)
                else:
                    found = _merged_page(parts[0], parts[1], offset, limit)
                found = _with_entries(index, found)
        exact = all(part.exact for part in parts)
        total = sum(part.total for part in parts)
        provinces: dict[str, int] = {}
        grounds: dict[str, int] = {}
        for part in parts if exact else ():
            for value, count in part.provinces.items():
                provinces[value] = provinces.get(value, 0) + count
            for value, count in part.grounds.items():
                grounds[value] = grounds.get(value, 0) + count
        with self.engine.connect() as conn:
            hits = still_published(conn, [hit(msgspec.json.encode(item["entry"])) for item in found])
        facets = {
            "province": {value: count for value, count in sorted(provinces.items()) if count},
            "ground": {g: grounds[g] for g in GROUNDS if grounds.get(g)},
        }
        return SearchResult(hits=hits, total=total, facets=facets, total_exact=exact)

    def get_sync(self, listing_id: str) -> PublicEntry | None:
        if not is_id(listing_id):
            return None
        self._refuse_if_lost()
        # A search, not a document read: the public's key has the `search` action only, and
        # `GET /indexes/{uid}/documents/{id}` needs `documents.get`.
        params = {
            "filter": [f"id = {quote_filter(listing_id)}"],
            "limit": 1,
            "attributesToRetrieve": ["entry"],
        }
        with reaching("get", query=True):
            found = self.searcher.index(self.name).search("", params)["hits"]
        if not found:
            return None
        with self.engine.connect() as conn:
            current = still_published(conn, [hit(msgspec.json.encode(found[0]["entry"]))])
        return current[0] if current else None

    # ---- the SearchEngine writes ----

    def apply(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        self.ensure(conn, record=True)
        self.write(self.name, _meili_documents(conn, documents, self.next_ranks(len(documents))), deleted)

    def repair(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        # Adding a document replaces the stored one whole: nothing stored is trusted.
        self.apply(conn, documents, deleted)

    def stored_versions(self, conn: Connection) -> Iterable[tuple[str, int]]:
        self.ensure(conn)
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
        """Into a fresh index from one snapshot of the registry, brought up to the log's head,
        then swapped in atomically (made first if the live index was lost). Ranks follow
        listing ids (publication order), below every later write's. A failed rebuild deletes
        its fresh index."""
        with reaching("rebuild"):
            version = self._read_version()
        fresh = self.fresh_name()
        try:
            self.configure(fresh)
            count = 0
            with self.engine.connect() as conn:
                start, _ = head(conn)
                for chunk in all_active_documents(conn):
                    ranks = range(count + 1, count + 1 + len(chunk))
                    self.write(fresh, _meili_documents(conn, chunk, ranks), [])
                    count += len(chunk)
                    progress.advance(len(chunk))
            reached = self._catch_up(fresh, start)
            with writer.begin() as conn:
                claim_cursor(conn, self.cursor)
                self._set_mark(conn, self.swap_in(fresh))
                self._record_version(conn, version)
                advance(conn, self.cursor, reached)
        except BaseException:
            self._drop(fresh)
            raise
        return {"documents": count}

    def fresh_name(self) -> str:
        """A rebuild's index: unique per run (two rebuilds started in one second do not
        share one), named after the live index so that an operator can tell what it is."""
        return f"{self.name}_build_{int(time.time())}_{secrets.token_hex(3)}"

    def _catch_up(self, fresh: str, start: int) -> int:
        """Apply the listing events above `start` to `fresh` (what changed while it was
        built, a lost index's whole gap), until a step finds less than a full batch: the swap
        then serves an index as current as the follower's. Returns the position reached."""
        position = start
        while True:
            # A new connection each step: on SQLite a read transaction would keep its snapshot.
            with self.engine.connect() as conn:
                last, _ = head(conn)
                reached = min(position + CATCH_UP_EVENTS, last)
                if reached <= position:
                    return position
                events = read_events(conn, position, None, LISTING_EVENTS, upto=reached)
                listing_ids = list(dict.fromkeys(e.listing_id for e in events if e.listing_id is not None))
                if listing_ids:
                    active, gone = load_documents(conn, listing_ids)
                    self.write(fresh, _meili_documents(conn, active, self.next_ranks(len(active))), gone)
            if reached - position < CATCH_UP_EVENTS:
                return reached
            position = reached

    def restore(self, writer: Engine) -> dict[str, int]:
        """The restore job: if the live index is lost or replaced, mark it so (every process
        answers 503 from then on) and rebuild it; {} when it is the registry's."""
        reason = self.check_index(writer)
        if reason is None:
            return {}
        logger.warning("search index %s: %s; rebuilding it", self.name, reason)
        figures = self.rebuild(writer, 1)
        logger.warning("search index %s rebuilt with %d documents", self.name, figures["documents"])
        return {"restored": int(figures["documents"])}

    def check_index(self, writer: Engine) -> str | None:
        """Whether the live index is the one the registry built: None if so (an index without
        a mark yet is adopted); otherwise why not, the mark then set to LOST. Under the
        cursor's claim, so that no swap falls between the index read and the mark's."""
        with writer.begin() as conn:
            claim_cursor(conn, self.cursor)
            with reaching("index check"):
                self._record_version(conn, self._read_version())
                info = self._index_info(self.name)
            position, mark = self._state(conn)
            reason = self._lost_reason(info, position, mark)
            if reason is not None and mark != LOST:
                self._set_mark(conn, LOST)
            elif reason is None and mark is None and (found := identity(info)) is not None:
                self._set_mark(conn, found)
        return reason

    def next_ranks(self, count: int) -> range:
        """Ranks above every earlier write's (microseconds, kept increasing in this process;
        writes of different processes take turns on the cursor)."""
        first = max(time.time_ns() // 1000, self._last_rank + 1)
        self._last_rank = first + count - 1
        return range(first, first + count)

    # ---- the registry's mark of the index ----

    def _state(self, conn: Connection) -> tuple[int, int | None]:
        """(the cursor's position, 0 if none; the mark, None if none)."""
        rows = dict(
            conn.execute(
                select(ReaderCursor.name, ReaderCursor.position).where(
                    ReaderCursor.name.in_([self.cursor, self.mark_name])
                )
            ).all()
        )
        return int(rows.get(self.cursor) or 0), rows.get(self.mark_name)

    def _set_mark(self, conn: Connection, value: int | None) -> None:
        """Record `value` as the mark (None: the live index's identity is unknown, no mark)."""
        _set_row(conn, self.mark_name, value)

    def _record_version(self, conn: Connection, version: tuple[int, int, int]) -> None:
        encoded = version[0] * 1_000_000 + version[1] * 1_000 + version[2]
        if _row(conn, self.version_name) != encoded:
            _set_row(conn, self.version_name, encoded)

    def _lost_reason(self, info: dict[str, Any] | None, position: int, mark: int | None) -> str | None:
        """Why the live index (`info`, None when missing) is not the registry's, or None."""
        if mark == LOST:
            return f"the index {self.name!r} was lost or replaced; a rebuild is due (`{RESTORE_JOB}`)"
        if info is None:
            if mark is None and position == 0:
                return None  # never indexed: ensure makes it
            return (
                f"the index {self.name!r} is missing though the registry has indexed into it "
                "(deleted, or Meilisearch's data lost): not made again empty"
            )
        found = identity(info)
        if mark is not None and found is not None and found != mark:
            return (
                f"the index {self.name!r} is not the one the registry built (another createdAt: "
                "made again behind its back)"
            )
        return None

    # ---- the server's side ----

    def _wait(self, task: Any, what: str) -> None:
        done = self.admin.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS)
        if done.status != "succeeded":
            raise TaskFailed(what, done)

    def _read_version(self) -> tuple[int, int, int]:
        self.version = parse_version(str(self.admin.get_version()["pkgVersion"]))
        if self.version[:2] >= NEXT_MAJOR and self._warned_version != self.version:
            logger.warning("%s (writes go on; readiness says so)", unsupported(self.version))
            self._warned_version = self.version
        return self.version

    def _index_info(self, index_name: str) -> dict[str, Any] | None:
        """`GET /indexes/{uid}`, None when there is no such index."""
        try:
            return dict(self.admin.get_raw_index(index_name))
        except MeilisearchApiError as exc:
            if exc.code == "index_not_found":
                return None
            raise

    def ensure(self, conn: Connection | None = None, *, record: bool = False) -> None:
        """The live index exists with this service's settings for the server's version: made
        if missing (unless the registry has indexed into it: then it was lost, and making it
        empty would answer "not listed" for everyone), its settings sent if they differ.
        Before every write. `conn`: the caller's registry transaction, in which the index is
        compared with the mark (`record`: and an index without one adopted)."""
        with reaching("ensure index"):
            wanted = settings_for(self._read_version())
            info = self._index_info(self.name)
        position, mark = 0, None
        if info is None or conn is not None:
            if conn is not None:
                position, mark = self._state(conn)
            else:
                with self.engine.connect() as read:
                    position, mark = self._state(read)
            if (reason := self._lost_reason(info, position, mark)) is not None:
                raise SearchUnavailable(
                    f"ensure index: {reason}; the worker's `{RESTORE_JOB}` job rebuilds it"
                )
        if info is None:
            self.configure(self.name, exist_ok=True)
            if conn is not None and record:
                with reaching("ensure index"):
                    self._set_mark(conn, identity(self._index_info(self.name)))
            return
        if conn is not None and record and mark is None and (found := identity(info)) is not None:
            self._set_mark(conn, found)
        with reaching("ensure index"):
            current = self.admin.index(self.name).get_settings()
            if not settings_in_place(current, wanted):
                self._wait(self.admin.index(self.name).update_settings(wanted), "settings")

    def write(self, index_name: str, documents: Sequence[dict[str, Any]], deleted: Sequence[str]) -> None:
        index = self.admin.index(index_name)
        with reaching("write"):
            for batch in _batches(documents):
                self._wait(index.add_documents(batch, primary_key="id"), "write")
            for start in range(0, len(deleted), BATCH):
                self._wait(index.delete_documents(filter=ids_filter(deleted[start : start + BATCH])), "write")

    def configure(self, index_name: str, *, exist_ok: bool = False) -> None:
        """Make `index_name` with this service's settings. `exist_ok`: another process made
        it a moment ago (both saw it missing), which is no failure; its settings are sent."""
        assert self.version is not None, "ensure() reads the version first"
        with reaching("configure"):
            self._create(index_name, exist_ok=exist_ok)
            self._wait(self.admin.index(index_name).update_settings(settings_for(self.version)), "settings")

    def _create(self, index_name: str, *, exist_ok: bool) -> None:
        try:
            self._wait(self.admin.create_index(index_name, {"primaryKey": "id"}), "create index")
        except TaskFailed as exc:
            if not (exist_ok and exc.task_code == "index_already_exists"):
                raise

    def swap_in(self, fresh: str) -> int | None:
        """Atomically make `fresh` the live index, then drop the old one (now named `fresh`);
        an empty live index is made first if it was lost (a swap needs both). Returns the new
        live index's identity."""
        with reaching("swap"):
            if self._index_info(self.name) is None:
                self._create(self.name, exist_ok=True)
            self._wait(self.admin.swap_indexes([{"indexes": [self.name, fresh]}]), "swap")
            self._wait(self.admin.delete_index(fresh), "swap")
            return identity(self._index_info(self.name))

    def _drop(self, index_name: str) -> None:
        """Delete a failed rebuild's index, if the server lets us (else say which is left)."""
        try:
            with reaching("drop"):
                if self._index_info(index_name) is not None:
                    self._wait(self.admin.delete_index(index_name), "drop")
        except Exception as exc:  # the rebuild's own error is the one to raise
            logger.warning("search rebuild: index %s left behind (%s)", index_name, type(exc).__name__)


@dataclass
class _Part:
    """One of a query's disjoint searches: its total (a lower bound unless `exact`), facets,
    and pages in rank order."""

    total: int
    exact: bool
    provinces: dict[str, int] = field(default_factory=dict)
    grounds: dict[str, int] = field(default_factory=dict)

    def rank_at(self, position: int) -> int | None:
        """The rank of the hit at `position`, None if there is none (any more)."""
        raise NotImplementedError

    def above(self, rank: int) -> int:
        """How many hits rank above `rank`."""
        raise NotImplementedError

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        raise NotImplementedError


@dataclass
class _Served(_Part):
    """A search Meilisearch pages (each call one request). `check`: a phrase whose hits are
    checked on the page (a page may then come back short; the total is then not exact)."""

    index: Any = None
    q: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    check: TextMatch | None = None

    def rank_at(self, position: int) -> int | None:
        probe = {**self.params, "offset": position, "limit": 1, "attributesToRetrieve": ["rank"]}
        hits = self.index.search(self.q, probe)["hits"]
        # Empty: the hit there was deleted between two searches of this page.
        return int(hits[0]["rank"]) if hits else None

    def above(self, rank: int) -> int:
        counted = {
            **self.params,
            "filter": [*self.params["filter"], f"rank > {rank}"],
            "page": 1,
            "hitsPerPage": 0,
        }
        return int(self.index.search(self.q, counted)["totalHits"])

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        hits = list(self.index.search(self.q, {**self.params, "offset": offset, "limit": limit})["hits"])
        check = self.check
        return hits if check is None else [item for item in hits if _true_match(item, check)]


@dataclass
class _Listed(_Part):
    """A checked phrase whose every candidate was read and checked: its true matches (id and
    rank), newest first, paged here."""

    kept: list[dict[str, Any]] = field(default_factory=list)

    def rank_at(self, position: int) -> int | None:
        return int(self.kept[position]["rank"]) if position < len(self.kept) else None

    def above(self, rank: int) -> int:
        return sum(1 for item in self.kept if int(item["rank"]) > rank)

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return self.kept[offset : offset + limit]


def _facets(answer: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    distribution = answer.get("facetDistribution") or {}
    provinces = {str(k): int(v) for k, v in (distribution.get("province_code") or {}).items()}
    grounds = {str(k): int(v) for k, v in (distribution.get("grounds") or {}).items()}
    return provinces, grounds


def _counted(index: Any, q: str, params: dict[str, Any], answer: dict[str, Any] | None) -> _Served:
    """A search's total and facets (from `answer`, a page-form answer, or asked for). Past
    MAX_WINDOW Meilisearch stops counting (maxTotalHits is one more): the total is then
    MAX_WINDOW, a lower bound (`total_exact` false)."""
    if answer is None:
        answer = index.search(q, {**params, "facets": FACETS, "page": 1, "hitsPerPage": 0})
    counted = int(answer["totalHits"])
    provinces, grounds = _facets(answer)
    exact = counted <= MAX_WINDOW
    return _Served(min(counted, MAX_WINDOW), exact, provinces, grounds, index, q, params)


def _checked(index: Any, q: str, params: dict[str, Any], match: TextMatch) -> _Part:
    """A phrase of five characters or more: its first CHECK_LIMIT + 1 candidates read and
    checked against their names, so that the total and facets leave out what is dropped on
    every page alike (not only on the page where a dropped hit falls). With more candidates
    than that, the total is a lower bound (the true matches found, less one: "more than"),
    as the embedded engine's past its count limit, and pages are checked one at a time."""
    read = {**params, "facets": FACETS, "page": 1, "hitsPerPage": CHECK_LIMIT + 1}
    answer = index.search(q, {**read, "attributesToRetrieve": _CANDIDATE_FIELDS})
    candidates = list(answer["hits"])
    if any(not isinstance(item.get("entry"), dict) or "name" not in item["entry"] for item in candidates):
        # A server that did not answer the nested fields: the entries whole, rather than a 500.
        answer = index.search(q, read)
        candidates = list(answer["hits"])
    kept = [item for item in candidates if _true_match(item, match)]
    if int(answer["totalHits"]) > len(candidates):
        return _Served(max(len(kept) - 1, 0), False, {}, {}, index, q, params, check=match)
    provinces, grounds = _facets(answer)
    for item in candidates:
        if _true_match(item, match):
            continue
        entry = item.get("entry") or {}
        province = entry.get("province_code")
        if province is not None and str(province) in provinces:
            provinces[str(province)] -= 1
        for ground in entry.get("grounds") or []:
            if ground in grounds:
                grounds[ground] -= 1
    listed = [{"id": item["id"], "rank": item["rank"]} for item in kept]
    return _Listed(len(listed), True, provinces, grounds, kept=listed)


def _merged_page(a: _Part, b: _Part, offset: int, limit: int) -> list[dict[str, Any]]:
    """Hits `offset`..`offset + limit` of two disjoint searches merged by rank, asking each
    for one page: the split of the first `offset` hits between them is found by bisection
    (each probe reads one rank of `a` and counts `b`'s higher ranks)."""
    if b.total == 0 or a.total == 0:
        return (a if b.total == 0 else b).page(offset, limit)
    # The largest x (hits taken from a) such that a's x-th hit ranks among the first offset.
    low, high = max(0, offset - b.total), min(offset, a.total)
    while low < high:
        x = (low + high + 1) // 2
        rank = a.rank_at(x - 1)
        # None: a's x-th hit is gone (deleted since a was counted): a has fewer than x.
        if rank is not None and x - 1 + b.above(rank) < offset:
            low = x
        else:
            high = x - 1
    merged = sorted(
        [*a.page(low, limit), *b.page(offset - low, limit)], key=lambda item: int(item["rank"]), reverse=True
    )
    return merged[:limit]


def _with_entries(index: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`found`, the entries of a checked phrase's hits (read as id and rank) fetched by id in
    one search; a hit deleted meanwhile is left out."""
    wanted = [str(item["id"]) for item in found if "entry" not in item]
    if not wanted:
        return found
    params = {"filter": [ids_filter(wanted)], "limit": len(wanted), "attributesToRetrieve": ["id", "entry"]}
    entries = {str(item["id"]): item["entry"] for item in index.search("", params)["hits"]}
    return [
        item if "entry" in item else {**item, "entry": entries[str(item["id"])]}
        for item in found
        if "entry" in item or str(item["id"]) in entries
    ]


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
