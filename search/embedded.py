"""The embedded index: `search_docs` in the registry database, FTS5 on SQLite, GIN on PostgreSQL.

Reads are hand-written SQL on a synchronous engine's driver (sqlite3 / psycopg), run in a
worker thread: on SQLite a sub-millisecond query is cheaper there than through aiosqlite.
A query reads the ids of up to `exact_count_limit` + 1 matches: when that is all of them,
the total and both facets (kind, province, grounds) are read off those ids and the page is
fetched by id; past it, the total is given as a lower bound with no facets, and a second
statement fetches the page in id order (on PostgreSQL, counting reads a table row per match,
`_walk_newest_first`, `_page_above_cuts`; a text is counted on the newest documents' own GIN
indexes first, `search.recent`). A query must name a text or an identifier (see `search.query`).

A document's id is a serial number (newest highest) above FACET_BITS bits that hold its
facet key. On SQLite, a text query is then answered from FTS5's rowids alone: the kind,
province and ground filters, the total and both facets need no row per match, only the page
does (figures in docs/benchmarks.md). Court and date filters still read the covering index.

Writes happen in the caller's transaction (the follower moves its cursor in the same one).
SQLite's FTS5 table uses this table as external content, so each change of a row is told
to FTS5 explicitly, with the exact terms that were indexed. The engine's own fast paths stay
here: the SQLite rebuild that builds documents in a TEMP table with a process pool and holds
the write lock only for the swap, and the deep comparison of PostgreSQL's rendered terms.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, Literal, cast

import anyio
from anyio import CapacityLimiter
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy import create_engine as sa_create_engine

from registry import progress
from registry.bulk import bulk_insert
from registry.db import create_sync_engine, sync_url
from registry.eventlog.readers import advance, claim_cursor
from registry.eventlog.services import head
from registry.identity.identifiers import PROVINCES
from registry.listings.disclosure import PublicEntry
from registry.listings.schemas import GROUNDS
from registry.settings import Settings
from search.documents import Document, ground_mask, grounds_of, hit
from search.interface import SearchQuery, SearchResult
from search.models import SearchDoc
from search.parallel import document_rows
from search.published import still_published
from search.recent import maintain_recent, recent_floor
from search.text import TextMatch, text_match

DOCS = cast(Table, SearchDoc.__table__)
CURSOR = "search.embedded"


# id = serial << FACET_BITS | organisation bit | province code (GB/T 2260, 11..82) << 6 | grounds.
FACET_BITS = 14
FACET_KEY = (1 << FACET_BITS) - 1
_ORGANIZATION_BIT = 1 << 13
_PROVINCE_SHIFT = 6
_PROVINCE_BITS = 127
_GROUND_BITS = (1 << _PROVINCE_SHIFT) - 1
_PROVINCE_KEY = _PROVINCE_BITS << _PROVINCE_SHIFT
assert len(GROUNDS) <= _PROVINCE_SHIFT, "each ground needs its own bit below the province"


def facet_key(kind: str, province_code: str | None, mask: int) -> int:
    organization = _ORGANIZATION_BIT if kind == "organization" else 0
    # A court registered before provinces were checked may carry another code ("zz"): its
    # listings are indexed without a province rather than stopping the follower for all.
    province = int(province_code) if province_code in PROVINCES else 0
    return organization | province << _PROVINCE_SHIFT | mask


def province_of(key: int) -> str | None:
    code = (key >> _PROVINCE_SHIFT) & _PROVINCE_BITS
    return f"{code:02d}" if code else None


def next_serial(conn: Connection) -> int:
    """The serial number after the newest document's (callers hold the indexer's cursor)."""
    newest = conn.execute(select(func.max(SearchDoc.id))).scalar()
    return (int(newest or 0) >> FACET_BITS) + 1


def _key_filters(query: SearchQuery, id_column: Literal["id", "rowid"]) -> tuple[list[str], dict[str, Any]]:
    """The kind, province and ground filters, read off the facet key in the document's id:
    the facets count from the same bits, so a filter and its facet cannot disagree."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if query.kind is not None:
        clauses.append(f"({id_column} & {_ORGANIZATION_BIT}) = :organization")
        params["organization"] = _ORGANIZATION_BIT if query.kind == "organization" else 0
    if query.province is not None:
        clauses.append(f"(({id_column} >> {_PROVINCE_SHIFT}) & {_PROVINCE_BITS}) = :province")
        params["province"] = int(query.province)
    if query.ground is not None:
        clauses.append(f"({id_column} & :ground) != 0")
        params["ground"] = ground_mask([query.ground])
    return clauses, params


def _quote_fts(term: str) -> str:
    # Terms are letters and digits only (search_form), but quote defensively all the same.
    return '"' + term.replace('"', '""') + '"'


def _quote_ts(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def fts_match(match: TextMatch) -> str:
    """An FTS5 query: the phrase of name terms, or the pinyin term."""
    expression = "terms : " + _quote_fts(" ".join(match.phrase))
    if match.pinyin is not None:
        expression = f"({expression}) OR (pinyin : {_quote_fts(match.pinyin)})"
    return expression


def ts_phrase(match: TextMatch) -> str:
    return " <-> ".join(_quote_ts(term) for term in match.phrase)


def ts_terms(terms: Sequence[str], province_code: str | None = None) -> str:
    """tsvector text: bigrams at positions 1..n-1 (phrase queries), single characters
    unpositioned, and the province's term (`province_term`) with, for each single character,
    that character in that province (`province_character_term`)."""
    parts = [
        f"{_quote_ts(term)}:{i + 1}" if len(term) > 1 else _quote_ts(term) for i, term in enumerate(terms)
    ]
    if province_code is not None:
        parts.append(_quote_ts(province_term(province_code)))
        parts.extend(
            _quote_ts(province_character_term(province_code, term)) for term in terms if len(term) == 1
        )
    return " ".join(parts)


def province_term(province_code: str) -> str:
    """PostgreSQL: a document's province as a term of its `terms` tsvector, so that GIN
    intersects a text with a province before any heap row is read: GIN yields heap tuples,
    and the bit test on the id alone fetched every match of the text (`王` with a province at
    1,000,000 listings: 75,000 heap rows for 7,600 matches). Name terms are letters and digits
    only (search.text), so `~` keeps it apart from them."""
    return f"~p{province_code}"


def province_character_term(province_code: str, character: str) -> str:
    """PostgreSQL: one character of a name in the document's province (`~p11王`), the term
    of a single-character query with a province (a surname: refused without one). Its
    posting list is that character's matches in that province alone, where intersecting
    `王` with `~p11` decoded both whole lists (52,000 and 120,000 entries at 1,000,000
    listings for 9,075 matches: 25 ms under load), a cost that grew with the list."""
    return f"{province_term(province_code)}{character}"


# PostgreSQL, for this transaction: a page by walking the primary key newest first, testing
# each row, until the page is full. The planner cannot tell when that is cheaper than reading
# every match and sorting: it guesses a phrase's matches from its terms' frequencies (28 for
# `建筑工程`, which has 25,659 at 1,000,000 listings), so it always reads every match.
_WALK_THE_PRIMARY_KEY = (
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true), "
    "set_config('enable_sort', 'off', true)"
)


def _spread(conn: Connection, ids: list[int]) -> tuple[float, int]:
    """(matches per serial number, the newest serial): the density of a query's matches,
    guessed from `ids`, some matches in the heap order the GIN scan gave them, which is
    mostly the order rows were written in (a guess: a wrong one costs time, never a wrong
    answer). Rows that updates and vacuums moved elsewhere in the heap do not count: the
    spread is taken between the serials at 5% and 95%, where one moved row among 1,001 made
    it the whole list (`李` in Beijing, 8,931 matches at 1,000,000 listings after migration
    0026 rewrote every row: all of them read and sorted, 8,700 blocks, for a page a walk
    finds in 400)."""
    serials = sorted(id_ >> FACET_BITS for id_ in ids)
    low, high = serials[len(serials) // 20], serials[len(serials) - 1 - len(serials) // 20]
    density = (len(serials) - 2 * (len(serials) // 20)) / (high - low + 1)
    newest = int(conn.exec_driver_sql("SELECT max(id) FROM search_docs").scalar() or 0) >> FACET_BITS
    return density, newest


def _walk_newest_first(density: float, newest: int, wanted: int) -> bool:
    """Whether walking the primary key to the `wanted`-th newest match reads fewer rows than
    reading every match would."""
    return wanted / density < density * newest


# PostgreSQL, for this transaction: a page from the matches at or above a serial number (a
# "cut"), their row addresses intersected in memory, GIN's with the primary key's range, so
# that only the matches above the cut are read, not every match (a name with 5,000 matches
# among 5,000,000 listings read 5,000 rows for a page of 20).
_INTERSECT_WITH_THE_KEY_RANGE = (
    "SELECT set_config('enable_indexscan', 'off', true), set_config('enable_seqscan', 'off', true)"
)
# How long a process trusts the floor of the newest documents' indexes it read (search.recent).
_RECENT_FLOOR_SECONDS = 30.0

# Rows a walk may read before a cut above the newest documents' floor is cheaper (at 5,000,000
# on PostgreSQL a walk of 4,000 to 8,000 rows took as long as such a cut: docs/benchmarks.md).
_SHORT_WALK_ROWS = 6000

# How many times the guessed span of the wanted matches a first cut leaves above it, and by
# how much a cut that left too few moves down.
_CUT_MARGIN = 4


def _first_span(wanted: int, density: float) -> float:
    """The serials above the first cut: `_CUT_MARGIN` times those the wanted matches are
    guessed to span."""
    return _CUT_MARGIN * wanted / density


def _page_above_cuts(
    conn: Connection, sql: tuple[str, str], params: dict[str, Any], spread: tuple[float, int], full: int
) -> list[bytes]:
    """The page (`sql`: with the cut, without), from the matches at or above a cut that
    leaves `_CUT_MARGIN` times the span the wanted ones are guessed to need, moved down
    while the page comes back short. Exact: a full page above a cut holds the newest matches
    of all (`full`: the page's length when full)."""
    with_cut, without = sql
    density, newest = spread
    span = _first_span(params["offset"] + full, density)
    conn.exec_driver_sql(_INTERSECT_WITH_THE_KEY_RANGE)
    while span < newest:
        rows = conn.exec_driver_sql(with_cut, params | {"cut": int(newest - span) << FACET_BITS}).all()
        if len(rows) == full:
            return [entry for (entry,) in rows]
        span *= _CUT_MARGIN
    return [entry for (entry,) in conn.exec_driver_sql(without, params)]


# A page of documents by id, newest first (ids of matches, `EmbeddedIndex._by_ids`).
_BY_IDS_SQLITE = "SELECT entry FROM search_docs WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id DESC"
_BY_IDS_PG = "SELECT entry FROM search_docs WHERE id = ANY(CAST(%(ids)s AS bigint[])) ORDER BY id DESC"


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """`:name` parameters to psycopg's `%(name)s` (the fragments use no `::` casts)."""
    return re.sub(r":(\w+)", r"%(\1)s", sql)


def _as_date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def reader_engine(database_url: str) -> Engine:
    """Synchronous reads for the hot path (on SQLite: BEGIN DEFERRED, taking no write lock)."""
    if database_url.startswith("sqlite"):
        return create_sync_engine(database_url, writer=False)
    # Custom plans: a generic plan for a short-pattern search is several times slower
    # (shared/DESIGN.md); psycopg would otherwise prepare after five runs. No JIT and no
    # parallel workers: a walk of the primary key (`_WALK_THE_PRIMARY_KEY`) is costed past
    # both thresholds, and compiling (50 ms) or starting workers costs more than the walk.
    options = "-c plan_cache_mode=force_custom_plan -c jit=off -c max_parallel_workers_per_gather=0"
    return sa_create_engine(
        sync_url(database_url),
        pool_size=8,
        max_overflow=4,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"options": options, "prepare_threshold": None},
    )


class EmbeddedIndex:
    """`SearchEngine` over `search_docs`; `engine` is a synchronous engine on the registry
    database, a reader's (`reader_engine`)."""

    cursor = CURSOR

    def __init__(
        self,
        engine: Engine,
        *,
        threads: int = 8,
        exact_count_limit: int = 1000,
        recent_segment: int = 1_000_000,
    ) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.exact_count_limit = exact_count_limit
        self.recent_segment = recent_segment
        self._limiter = CapacityLimiter(threads)
        # (floor, when it was read): read on the first query.
        self._recent: tuple[int | None, float] = (None, -math.inf)

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedIndex:
        return cls(
            reader_engine(settings.database.url),
            exact_count_limit=settings.search.exact_count_limit,
            recent_segment=settings.search.recent_segment,
        )

    def close(self) -> None:
        self.engine.dispose()

    # ---- the SearchIndex protocol ----

    async def search(self, query: SearchQuery) -> SearchResult:
        return await anyio.to_thread.run_sync(self.search_sync, query, limiter=self._limiter)

    async def get(self, listing_id: str) -> PublicEntry | None:
        return await anyio.to_thread.run_sync(self.get_sync, listing_id, limiter=self._limiter)

    async def ready(self) -> str | None:
        # It lives in the registry's database, whose readiness is checked on its own.
        return None

    # ---- the work ----

    def where(self, query: SearchQuery) -> tuple[str, dict[str, Any]]:
        """The WHERE clause over `search_docs`, joined from fixed fragments; every value is a
        bound parameter. On SQLite a text query is answered by `fts_source` instead."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if query.text is not None:
            match = text_match(query.text)
            if match is None:
                # The query parser refuses such text; an index asked directly finds nothing.
                clauses.append("1 = 0")
            else:
                # PostgreSQL only (SQLite answers a text from FTS5). The province's term
                # narrows in the index; the key filter below still applies, as on SQLite.
                params["phrase"] = ts_phrase(match)
                if query.province is not None:
                    params["province_term"] = _quote_ts(province_term(query.province))
                    if len(match.phrase) == 1 and len(match.phrase[0]) == 1:
                        params["phrase"] = _quote_ts(province_character_term(query.province, match.phrase[0]))
                    else:
                        params["phrase"] = f"({params['phrase']}) & {params['province_term']}"
                if match.pinyin is None:
                    clauses.append("terms @@ CAST(:phrase AS tsquery)")
                else:
                    params["pinyin"] = _quote_ts(match.pinyin)
                    pinyin = "pinyin @@ CAST(:pinyin AS tsquery)"
                    if query.province is not None:
                        pinyin = f"({pinyin} AND terms @@ CAST(:province_term AS tsquery))"
                    clauses.append(f"(terms @@ CAST(:phrase AS tsquery) OR {pinyin})")
        key_clauses, key_params = _key_filters(query, "id")
        row_clauses, row_params = self._row_filters(query)
        return " AND ".join(clauses + key_clauses + row_clauses) or "1 = 1", params | key_params | row_params

    def _row_filters(self, query: SearchQuery) -> tuple[list[str], dict[str, Any]]:
        """The filters that the facet key does not hold: identifier, court, dates."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if query.identifier_blind is not None:
            clauses.append(
                "listing_id IN (SELECT id FROM listings WHERE debtor_id_blind IN (:blind, :blind_retiring)"
                " AND status = 'active')"
            )
            params["blind"] = query.identifier_blind
            # During a blind-index key rotation a listing may not be recomputed yet.
            params["blind_retiring"] = query.identifier_blind_retiring or query.identifier_blind
        if query.court is not None:
            clauses.append("court_code = :court")
            params["court"] = query.court
        for clause, name, day in (
            ("published_on >= :published_from", "published_from", query.published_from),
            ("published_on <= :published_to", "published_to", query.published_to),
        ):
            if day is not None:
                clauses.append(clause)
                # SQLite stores dates as ISO text (SQLAlchemy's Date there).
                params[name] = day.isoformat() if self.sqlite else day
        return clauses, params

    def fts_source(self, query: SearchQuery, match: TextMatch) -> tuple[str, dict[str, Any]]:
        """SQLite, a text query: `FROM search_fts WHERE ...` filtering on the rowid's facet key,
        so that counting reads FTS5's doclists and nothing else."""
        key_clauses, params = _key_filters(query, "rowid")
        clauses = ["search_fts MATCH :fts", *key_clauses]
        params["fts"] = fts_match(match)
        row_clauses, row_params = self._row_filters(query)
        if row_clauses:
            # Per match, one probe of the covering index `search_fts_facets`.
            clauses.append(
                "EXISTS (SELECT 1 FROM search_docs WHERE search_docs.id = search_fts.rowid AND "  # noqa: S608
                + " AND ".join(row_clauses)
                + ")"
            )
        return "FROM search_fts WHERE " + " AND ".join(clauses), params | row_params

    def _statements(
        self, query: SearchQuery, recent: int | None = None
    ) -> tuple[str, tuple[str, str], dict[str, Any]]:
        """(the ids of up to :counted matches in no particular order, the page's entries in
        order: from the matches at or above :cut and from all of them (PostgreSQL; SQLite's
        two are one), their parameters); the SQL is made of the fixed fragments above only.
        `recent`: PostgreSQL, the floor serial of the newest documents' own indexes."""
        match = text_match(query.text) if query.text is not None else None
        if self.sqlite and match is not None:
            source, params = self.fts_source(query, match)
            matches = f"SELECT rowid {source} LIMIT :counted"
            page = (
                "SELECT entry FROM search_docs WHERE id IN "  # noqa: S608
                f"(SELECT rowid {source} ORDER BY rowid DESC LIMIT :limit OFFSET :offset) ORDER BY id DESC"
            )
            return matches, (page, page), params
        where, params = self.where(query)
        matches = f"SELECT id FROM search_docs WHERE {where} LIMIT :counted"  # noqa: S608
        if recent is not None and match is not None:
            # The newest documents first, on their own indexes (search.recent): the older half
            # is started only if they held fewer than :counted matches.
            matches = (
                f"SELECT id FROM (SELECT id FROM search_docs WHERE {where} AND id >= :recent "  # noqa: S608
                f"UNION ALL SELECT id FROM search_docs WHERE {where} AND id < :recent) AS m LIMIT :counted"
            )
            params["recent"] = recent << FACET_BITS
        ordered = "ORDER BY id DESC LIMIT :limit OFFSET :offset"
        page = f"SELECT entry FROM search_docs WHERE {where} {ordered}"  # noqa: S608
        above_cut = f"SELECT entry FROM search_docs WHERE {where} AND id >= :cut {ordered}"  # noqa: S608
        return self._driver_sql(matches), (self._driver_sql(above_cut), self._driver_sql(page)), params

    @staticmethod
    def _page_past_the_limit(
        conn: Connection,
        sql: tuple[str, str],
        params: dict[str, Any],
        ids: list[int],
        full: int,
        recent: int | None = None,
    ) -> list[bytes]:
        """PostgreSQL: the page of a query with more matches than are counted, by walking the
        primary key newest first where the matches are dense, else from above a cut
        (`recent`: the floor of the newest documents' own indexes, search.recent)."""
        density, newest = _spread(conn, ids)
        wanted = params["offset"] + full
        walk = _walk_newest_first(density, newest, wanted)
        if walk and recent is not None and newest - _first_span(wanted, density) >= recent:
            # A first cut above the floor decodes only the newest documents' short posting
            # lists, so the walk pays only while it is short.
            walk = wanted / density < _SHORT_WALK_ROWS
        if walk:
            conn.exec_driver_sql(_WALK_THE_PRIMARY_KEY)
            return [entry for (entry,) in conn.exec_driver_sql(sql[1], params)]
        return _page_above_cuts(conn, sql, params, (density, newest), full)

    def _driver_sql(self, sql: str) -> str:
        return sql if self.sqlite else _pyformat(sql)

    def _by_ids(self, conn: Connection, ids: list[int]) -> list[PublicEntry]:
        """The entries of these documents, newest first."""
        if not ids:
            return []
        if self.sqlite:
            rows = conn.exec_driver_sql(_BY_IDS_SQLITE, (json.dumps(ids),))
        else:
            rows = conn.exec_driver_sql(_BY_IDS_PG, {"ids": ids})
        return [hit(entry) for (entry,) in rows]

    def search_sync(self, query: SearchQuery) -> SearchResult:
        # Hand-written SQL on the driver: building SQLAlchemy statements cost three times the
        # query itself here (~0.6 ms of ~0.8 ms for a selective name).
        offset = (query.page - 1) * query.per_page
        with self.engine.connect() as conn:
            floor = self._recent_floor(conn)
            matches, (above_cut, page), params = self._statements(query, floor)
            # One more than the limit tells "exactly the limit" from "more".
            params |= {"limit": query.per_page, "offset": offset, "counted": self.exact_count_limit + 1}
            ids = [id_ for (id_,) in conn.exec_driver_sql(matches, params)]
            if len(ids) > self.exact_count_limit:
                # Too many to count (on PostgreSQL a heap row each): the page alone, and the
                # total as a lower bound.
                if self.sqlite:
                    entries = [entry for (entry,) in conn.exec_driver_sql(page, params)]
                else:
                    entries = self._page_past_the_limit(
                        conn,
                        (above_cut, page),
                        params,
                        ids,
                        query.per_page,
                        floor if "recent" in params else None,
                    )
                hits = still_published(conn, [hit(entry) for entry in entries])
                empty: dict[str, dict[str, int]] = {"province": {}, "ground": {}}
                return SearchResult(hits=hits, total=self.exact_count_limit, facets=empty, total_exact=False)
            ids.sort(reverse=True)
            hits = still_published(conn, self._by_ids(conn, ids[offset : offset + query.per_page]))
        # Add up per province and per grounds mask first, decode those few after.
        by_province: dict[int, int] = {}
        by_mask: dict[int, int] = {}
        for id_ in ids:
            province = id_ & _PROVINCE_KEY
            by_province[province] = by_province.get(province, 0) + 1
            mask = id_ & _GROUND_BITS
            by_mask[mask] = by_mask.get(mask, 0) + 1
        provinces = {
            code: count
            for key, count in sorted(by_province.items())
            if (code := province_of(key)) is not None
        }
        grounds: dict[str, int] = dict.fromkeys(GROUNDS, 0)
        for mask, count in by_mask.items():
            for ground in grounds_of(mask):
                grounds[ground] += count
        facets = {
            "province": provinces,
            "ground": {ground: count for ground, count in grounds.items() if count},
        }
        return SearchResult(hits=hits, total=len(ids), facets=facets)

    def _recent_floor(self, conn: Connection) -> int | None:
        """PostgreSQL: the floor of the newest documents' own indexes, read from the catalog
        at most every `_RECENT_FLOOR_SECONDS` (another process moves it; a stale floor costs
        time, never a wrong answer: search.recent)."""
        if self.sqlite:
            return None
        floor, read_at = self._recent
        if time.monotonic() - read_at > _RECENT_FLOOR_SECONDS:
            floor = recent_floor(conn)
            self._recent = (floor, time.monotonic())
        return floor

    def maintain_recent(self) -> dict[str, Any]:
        """Build or move the newest documents' own indexes when due (search.recent); a no-op
        on SQLite."""
        if self.sqlite:
            return {"floor": None, "created": False, "dropped": 0}
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            done = maintain_recent(conn, next_serial(conn) - 1, self.recent_segment, FACET_BITS)
        self._recent = (done["floor"], time.monotonic())
        return done

    def get_sync(self, listing_id: str) -> PublicEntry | None:
        sql = self._driver_sql("SELECT entry FROM search_docs WHERE listing_id = :id")
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(sql, {"id": listing_id}).first()
            found = [] if row is None else still_published(conn, [hit(row.entry)])
        return found[0] if found else None

    # ---- the SearchEngine writes ----

    def apply(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        apply_changes(conn, documents, deleted)

    def repair(self, conn: Connection, documents: Sequence[Document], deleted: Sequence[str]) -> None:
        """On SQLite, a row may have been changed behind FTS5's back (that is how drift
        happens), so FTS5 cannot be told to forget its old terms: it is rebuilt from the rows."""
        if not self.sqlite:
            apply_changes(conn, [], deleted)
            write_documents(conn, documents)
            return
        conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('delete-all')"))
        ids = [*deleted, *(doc.listing_id for doc in documents)]
        for start in range(0, len(ids), 500):
            conn.execute(delete(SearchDoc).where(SearchDoc.listing_id.in_(ids[start : start + 500])))
        insert_rows(conn, [doc_row(doc, True) for doc in documents], next_serial(conn))
        rebuild_fts(conn)

    def stored_versions(self, conn: Connection) -> Iterable[tuple[str, int]]:
        return conn.execute(
            select(SearchDoc.listing_id, SearchDoc.version)
            .order_by(SearchDoc.listing_id)
            .execution_options(yield_per=10_000)
        )

    def differing(self, conn: Connection, documents: Sequence[Document]) -> list[str]:
        """Compared whole: filter columns, facet key, entry and terms (as the database renders them)."""
        found: list[str] = []
        for start in range(0, len(documents), 500):
            chunk = documents[start : start + 500]
            present = {
                row.listing_id: row
                for row in conn.execute(
                    select(SearchDoc).where(SearchDoc.listing_id.in_([doc.listing_id for doc in chunk]))
                )
            }
            expected = _rendered(conn, [doc_row(doc, self.sqlite) for doc in chunk])
            found.extend(
                doc.listing_id
                for doc, row in zip(chunk, expected, strict=True)
                if (stored := present.get(doc.listing_id)) is not None and _differs(stored, row)
            )
        return found

    def rebuild(self, writer: Engine, workers: int) -> dict[str, Any]:
        """SQLite: built in a TEMP table on this engine's reader connection, the write lock held
        only for the swap. PostgreSQL: in one transaction of `writer` (readers keep the old
        documents until it commits), then the dead rows are vacuumed."""
        if self.sqlite:
            count, held = _staged_rebuild(self.engine, workers)
            return {"documents": count, "write_lock_seconds": round(held, 2)}
        with writer.begin() as conn:
            claim_cursor(conn, CURSOR)
            start, _ = head(conn)
            clear_all(conn)
            serial = 1
            for rows in document_rows(conn, workers, doc_row):
                serial = insert_rows(conn, rows, serial)
                progress.advance(len(rows))
            rebuild_fts(conn)
            advance(conn, CURSOR, start)
        # Every old row is now dead: reclaim it (VACUUM cannot run inside the rebuild's
        # transaction), or queries recheck twice the rows until autovacuum comes.
        with writer.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE) search_docs"))
        # Serials were given again from 1: the newest documents' indexes may need moving.
        return {"documents": serial - 1, "recent_index": self.maintain_recent()}


# ---- writing (in the caller's transaction) ----


def doc_row(doc: Document, sqlite: bool) -> dict[str, Any]:
    """The row of a document, its id holding the facet key only: `numbered` adds the serial."""
    return {
        "id": facet_key(doc.kind, doc.province_code, doc.ground_mask),
        "listing_id": doc.listing_id,
        "version": doc.version,
        "kind": doc.kind,
        "province_code": doc.province_code,
        "court_code": doc.court_code,
        "ground_mask": doc.ground_mask,
        "published_on": doc.published_on,
        "terms": " ".join(doc.terms) if sqlite else ts_terms(doc.terms, doc.province_code),
        "pinyin": " ".join(doc.pinyin) if sqlite else " ".join(_quote_ts(t) for t in doc.pinyin),
        "entry": doc.entry,
    }


def _drop(conn: Connection, listing_ids: Sequence[str]) -> None:
    """Delete the documents of these listings (and, on SQLite, their FTS5 entries)."""
    sqlite = conn.dialect.name == "sqlite"
    for start in range(0, len(listing_ids), 500):
        chunk = list(listing_ids[start : start + 500])
        if sqlite:
            # External content: FTS5 must be given the very terms it indexed to forget them.
            conn.execute(
                text(
                    "INSERT INTO search_fts(search_fts, rowid, terms, pinyin) "
                    "SELECT 'delete', id, terms, pinyin FROM search_docs WHERE listing_id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": chunk},
            )
        conn.execute(delete(SearchDoc).where(SearchDoc.listing_id.in_(chunk)))


def write_documents(conn: Connection, docs: Sequence[Document]) -> None:
    """Replace (or add) these documents. New rows get new serial numbers: the newest change
    sorts first."""
    if not docs:
        return
    sqlite = conn.dialect.name == "sqlite"
    ids = [doc.listing_id for doc in docs]
    _drop(conn, ids)
    insert_rows(conn, [doc_row(doc, sqlite) for doc in docs], next_serial(conn))
    if sqlite:
        for start in range(0, len(ids), 500):
            conn.execute(
                text(
                    "INSERT INTO search_fts(rowid, terms, pinyin) "
                    "SELECT id, terms, pinyin FROM search_docs WHERE listing_id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": ids[start : start + 500]},
            )


def current_versions(conn: Connection, listing_ids: Iterable[str]) -> dict[str, int]:
    ids = list(listing_ids)
    versions: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            select(SearchDoc.listing_id, SearchDoc.version).where(
                SearchDoc.listing_id.in_(ids[start : start + 500])
            )
        )
        versions.update({row.listing_id: row.version for row in rows})
    return versions


def apply_changes(conn: Connection, active: Sequence[Document], gone: Sequence[str]) -> None:
    """Idempotent: a document already at its listing's version is left alone (a rewrite would
    give it a new serial number, and so move it to the top of the newest-first order)."""
    known = current_versions(conn, [doc.listing_id for doc in active])
    write_documents(conn, [doc for doc in active if known.get(doc.listing_id) != doc.version])
    _drop(conn, gone)


def clear_all(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('delete-all')"))
    conn.execute(delete(SearchDoc))


def rebuild_fts(conn: Connection) -> None:
    """After a bulk load or repairs. SQLite: rebuild FTS5 from `search_docs`. PostgreSQL: merge
    the GIN pending lists (every query would scan them) and refresh the planner's statistics."""
    if conn.dialect.name == "sqlite":
        conn.execute(text("INSERT INTO search_fts(search_fts) VALUES ('rebuild')"))
        return
    conn.execute(text("SELECT gin_clean_pending_list('search_fts_terms_gin')"))
    conn.execute(text("SELECT gin_clean_pending_list('search_fts_pinyin_gin')"))
    conn.execute(text("ANALYZE search_docs"))


def numbered(rows: list[dict[str, Any]], first_serial: int) -> list[dict[str, Any]]:
    """Rows of `doc_row`, given serial numbers from `first_serial`, in order."""
    for offset, row in enumerate(rows):
        row["id"] |= (first_serial + offset) << FACET_BITS
    return rows


def insert_rows(conn: Connection, rows: list[dict[str, Any]], first_serial: int) -> int:
    """Insert rows of `doc_row` numbered from `first_serial`; returns the next serial. Rows
    only: FTS5 is told by the caller (`write_documents`), or rebuilt once after a bulk load.
    A rebuild counts serials itself: on PostgreSQL, max(id) would walk past every row it
    deleted."""
    bulk_insert(conn, DOCS, numbered(rows, first_serial))
    return first_serial + len(rows)


# ---- drift (reconcile --deep) ----

_COMPARED = ("version", "kind", "province_code", "court_code", "ground_mask", "published_on")


def _differs(stored: Any, expected: dict[str, Any]) -> bool:
    """`expected`: a `doc_row`, its terms as the database renders them (see `_rendered`)."""
    if any(getattr(stored, name) != expected[name] for name in _COMPARED):
        return True
    if stored.id & FACET_KEY != expected["id"]:
        return True
    if bytes(stored.entry) != expected["entry"]:
        return True
    return bool(stored.terms != expected["terms"] or stored.pinyin != expected["pinyin"])


_RENDERED = (
    "SELECT CAST(terms AS tsvector)::text, CAST(pinyin AS tsvector)::text "
    "FROM unnest(CAST(:terms AS text[]), CAST(:pinyin AS text[])) WITH ORDINALITY AS t(terms, pinyin, n) "
    "ORDER BY n"
)


def _rendered(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of `doc_row` with their terms as the database gives them back: SQLite keeps our
    text; PostgreSQL renders a tsvector its own way (sorted, merged positions), so it is
    asked to render ours, 500 rows a statement."""
    if conn.dialect.name == "sqlite" or not rows:
        return rows
    columns = {"terms": [row["terms"] for row in rows], "pinyin": [row["pinyin"] for row in rows]}
    rendered = conn.execute(text(_RENDERED), columns).all()
    return [
        row | {"terms": terms, "pinyin": pinyin} for row, (terms, pinyin) in zip(rows, rendered, strict=True)
    ]


# ---- the SQLite rebuild ----

# Our own table and column names: the only text spliced into the statements below.
_STAGE = "search_docs_build"
_STAGED_COLUMNS = ", ".join(column.name for column in DOCS.columns)


def _staged_rebuild(engine: Engine, workers: int) -> tuple[int, float]:
    """SQLite: the rebuild without holding the database's write lock while documents are built.

    Documents are built (by `workers` processes at scale: search.parallel) into a TEMP table
    (SQLite's temp database: writing it takes no lock on the registry file), then one short
    write transaction swaps them in and rebuilds FTS5. Ingest waits only for the swap; the
    public sees the old index until it commits. The cursor goes to the log head read first,
    so what changed since is replayed by the follower (for up to one interval, the snapshot
    is what shows). Returns (documents, seconds the write lock was held). `engine`: a reader
    engine (BEGIN DEFERRED), so that the snapshot's transaction takes no write lock.
    """
    stage = Table(_STAGE, MetaData(), *(Column(c.name, c.type) for c in DOCS.columns))
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_STAGE}")
        conn.exec_driver_sql(
            f"CREATE TEMP TABLE {_STAGE} AS SELECT {_STAGED_COLUMNS} FROM search_docs WHERE 0"  # noqa: S608
        )
        start, _ = head(conn)
        count = 0
        for rows in document_rows(conn, workers, doc_row):
            bulk_insert(conn, stage, numbered(rows, count + 1))
            count += len(rows)
            progress.advance(len(rows))
        conn.commit()
        locked = time.perf_counter()
        # The first statement writes, so the transaction waits for the write lock (busy
        # timeout) instead of failing to upgrade a read snapshot; holding it, the cursor's
        # claim cannot wait on anyone.
        clear_all(conn)
        claim_cursor(conn, CURSOR)
        conn.exec_driver_sql(
            f"INSERT INTO search_docs ({_STAGED_COLUMNS}) "  # noqa: S608
            f"SELECT {_STAGED_COLUMNS} FROM temp.{_STAGE} ORDER BY rowid"
        )
        rebuild_fts(conn)
        advance(conn, CURSOR, start)
        conn.commit()
        held = time.perf_counter() - locked
        conn.exec_driver_sql(f"DROP TABLE temp.{_STAGE}")
        conn.commit()
    return count, held
