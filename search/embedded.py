"""The embedded index: `search_docs` in the registry database, FTS5 on SQLite, GIN on PostgreSQL.

Reads are hand-written SQL on a synchronous engine's driver (sqlite3 / psycopg), run in a
worker thread: on SQLite a sub-millisecond query is cheaper there than through aiosqlite.
Two statements answer a query: one counts the matches per facet key (kind, province,
grounds), which gives the total and both facets at once; one fetches the page. A query must
name a text or an identifier (see `search.query`), so a match set is bounded by the most
common name.

A document's id is a serial number (newest highest) above FACET_BITS bits that hold its
facet key. On SQLite, a text query is then answered from FTS5's rowids alone: the kind,
province and ground filters, the total and both facets need no row per match, only the page
does (`registry bench search` at a million listings: 王 with a province p50 137 -> 7.5 ms,
2-character names p99 52 -> 9.4 ms). Court and date filters still read the covering index.

Writes happen in the caller's transaction (the indexer moves its cursor in the same one).
SQLite's FTS5 table uses this table as external content, so each change of a row is told
to FTS5 explicitly, with the exact terms that were indexed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, Literal, cast

import anyio
from anyio import CapacityLimiter
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    select,
    text,
)

from registry.bulk import bulk_insert
from registry.calendar import today_in_china
from registry.listings.disclosure import PublicEntry
from registry.listings.schemas import GROUNDS
from search.documents import Document, ground_mask, grounds_of, hit
from search.interface import SearchQuery, SearchResult
from search.models import SearchDoc
from search.text import TextMatch, text_match

DOCS = cast(Table, SearchDoc.__table__)


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
    return organization | int(province_code or 0) << _PROVINCE_SHIFT | mask


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
    unpositioned, and the province's term (`province_term`)."""
    parts = [
        f"{_quote_ts(term)}:{i + 1}" if len(term) > 1 else _quote_ts(term) for i, term in enumerate(terms)
    ]
    if province_code is not None:
        parts.append(_quote_ts(province_term(province_code)))
    return " ".join(parts)


def province_term(province_code: str) -> str:
    """PostgreSQL: a document's province as a term of its `terms` tsvector, so that GIN
    intersects a text with a province before any heap row is read: GIN yields heap tuples,
    and the bit test on the id alone fetched every match of the text (`王` with a province at
    1,000,000 listings: 75,000 heap rows for 7,600 matches). Name terms are letters and digits
    only (search.text), so `~` keeps it apart from them."""
    return f"~p{province_code}"


@lru_cache(maxsize=256)
def _pyformat(sql: str) -> str:
    """`:name` parameters to psycopg's `%(name)s` (the fragments use no `::` casts)."""
    return re.sub(r":(\w+)", r"%(\1)s", sql)


def _as_date(value: date | str | None) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


class EmbeddedIndex:
    """`SearchIndex` over `search_docs`; `engine` is a synchronous engine on the registry database."""

    def __init__(self, engine: Engine, *, threads: int = 8) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._limiter = CapacityLimiter(threads)

    # ---- the SearchIndex protocol ----

    async def search(self, query: SearchQuery) -> SearchResult:
        return await anyio.to_thread.run_sync(self.search_sync, query, limiter=self._limiter)

    async def get(self, listing_id: str) -> PublicEntry | None:
        return await anyio.to_thread.run_sync(self.get_sync, listing_id, limiter=self._limiter)

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
                "listing_id IN (SELECT id FROM listings WHERE debtor_id_blind = :blind AND status = 'active')"
            )
            params["blind"] = query.identifier_blind
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

    def _statements(self, query: SearchQuery) -> tuple[str, str, dict[str, Any]]:
        """(the counts per facet key, the page's entries, their parameters); the SQL is made
        of the fixed fragments above only."""
        match = text_match(query.text) if query.text is not None else None
        if self.sqlite and match is not None:
            source, params = self.fts_source(query, match)
            counts = f"SELECT rowid & {FACET_KEY}, count(*) {source} GROUP BY 1"
            page = (
                "SELECT entry, birth_date FROM search_docs WHERE id IN "  # noqa: S608
                f"(SELECT rowid {source} ORDER BY rowid DESC LIMIT :limit OFFSET :offset) ORDER BY id DESC"
            )
            return counts, page, params
        where, params = self.where(query)
        counts = f"SELECT id & {FACET_KEY}, count(*) FROM search_docs WHERE {where} GROUP BY 1"  # noqa: S608
        page = (
            f"SELECT entry, birth_date FROM search_docs WHERE {where} "  # noqa: S608
            "ORDER BY id DESC LIMIT :limit OFFSET :offset"
        )
        return self._driver_sql(counts), self._driver_sql(page), params

    def _driver_sql(self, sql: str) -> str:
        return sql if self.sqlite else _pyformat(sql)

    def search_sync(self, query: SearchQuery) -> SearchResult:
        # Hand-written SQL on the driver: building SQLAlchemy statements cost three times the
        # query itself here (~0.6 ms of ~0.8 ms for a selective name).
        counts, page, params = self._statements(query)
        offset = (query.page - 1) * query.per_page
        params |= {"limit": query.per_page, "offset": offset}
        total = 0
        # A broad text has a thousand or more facet keys: add up per province and per grounds
        # mask first, decode those few after.
        by_province: dict[int, int] = {}
        by_mask: dict[int, int] = {}
        hits: list[PublicEntry] = []
        with self.engine.connect() as conn:
            for key, count in conn.exec_driver_sql(counts, params):
                total += count
                province = key & _PROVINCE_KEY
                by_province[province] = by_province.get(province, 0) + count
                mask = key & _GROUND_BITS
                by_mask[mask] = by_mask.get(mask, 0) + count
            if offset < total:
                today = today_in_china()
                hits = [
                    hit(entry, _as_date(birth), today) for entry, birth in conn.exec_driver_sql(page, params)
                ]
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
        return SearchResult(hits=hits, total=total, facets=facets)

    def get_sync(self, listing_id: str) -> PublicEntry | None:
        sql = self._driver_sql("SELECT entry, birth_date FROM search_docs WHERE listing_id = :id")
        with self.engine.connect() as conn:
            row = conn.exec_driver_sql(sql, {"id": listing_id}).first()
        return None if row is None else hit(row.entry, _as_date(row.birth_date), today_in_china())


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
        "birth_date": doc.birth_date,
        "terms": " ".join(doc.terms) if sqlite else ts_terms(doc.terms, doc.province_code),
        "pinyin": " ".join(doc.pinyin) if sqlite else " ".join(_quote_ts(t) for t in doc.pinyin),
        "entry": doc.entry,
    }


def _drop(conn: Connection, listing_ids: Sequence[str]) -> int:
    """Delete the documents of these listings (and, on SQLite, their FTS5 entries)."""
    removed = 0
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
        removed += conn.execute(delete(SearchDoc).where(SearchDoc.listing_id.in_(chunk))).rowcount
    return removed


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


def apply_changes(conn: Connection, active: Sequence[Document], gone: Sequence[str]) -> tuple[int, int]:
    """Idempotent: a document already at its listing's version is left alone. (written, deleted)"""
    known = current_versions(conn, [doc.listing_id for doc in active])
    fresh = [doc for doc in active if known.get(doc.listing_id) != doc.version]
    write_documents(conn, fresh)
    return len(fresh), _drop(conn, gone)


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
