"""`registry bench search`: public search on a scratch database of N signed listings. JSON out.

The database is built as `registry bench ingest` builds it (demo courts, signed envelopes,
`registry import`; with `--dataset DIR`, on SQLite, kept there and copied on later runs), then:
- full reindex, timed (the embedded index, one transaction);
- name queries in-process through `SearchIndex.search` (the thread hop included), per kind
  of query, on names drawn from the data: 2- and 3-character personal names, pinyin,
  4-character parts of organisation names, the same with filters; and, as the API accepts
  them only with a province (search.text.too_broad), the ten commonest surnames, each with
  a province (a text of legal-form words only, such as 有限公司, is refused outright);
- removal to gone: `registry serve` with its scheduler (the indexer at its configured
  interval) takes signed removals over HTTP, once its log readers (search, feeds,
  transparency log) have caught up with the freshly imported list; the time until the
  public endpoint answers 404 for the entry is measured from the removal's request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pypinyin import lazy_pinyin
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bench.common import (
    _free_port,
    _registry,
    build_or_reuse,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
    wait_until_healthy,
)
from demo.seed import load_signers
from publishing.feeds.reader import CURSOR_NAME as FEEDS_CURSOR
from registry.calendar import today_in_china
from registry.checks.watchlist import CURSOR_NAME as WATCHLIST_CURSOR
from registry.identity.signing import sign_envelope
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from registry.translog.services import CURSOR_NAME as TRANSLOG_CURSOR
from search.embedded import CURSOR, EmbeddedIndex, reader_engine
from search.interface import SearchQuery
from search.maintenance import reindex_now
from search.text import names_no_one, too_broad

SAMPLES = 200
REMOVALS = 20


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "queries": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def _sample(engine: Any, sql: str, n: int = SAMPLES) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), {"n": n}))


PEOPLE = (
    "SELECT debtor_name, province_code, grounds FROM listings WHERE status = 'active' "
    "AND debtor_kind = 'person' AND length(debtor_name) = :length ORDER BY random() LIMIT :n"
)
ORGANIZATIONS = (
    "SELECT debtor_name FROM listings WHERE status = 'active' "
    "AND debtor_kind = 'organization' "
    "ORDER BY random() LIMIT :n"
)
# Open-ended listings: the server's expiry job cannot remove them first.
TO_REMOVE = (
    "SELECT id, court_code FROM listings WHERE status = 'active' AND expires_on IS NULL "
    "ORDER BY random() LIMIT :n"
)


def _query_sets(engine: Any, rng: random.Random) -> dict[str, list[SearchQuery]]:
    with engine.connect() as conn:
        two = list(conn.execute(text(PEOPLE), {"length": 2, "n": SAMPLES}))
        three = list(conn.execute(text(PEOPLE), {"length": 3, "n": SAMPLES}))
        organizations = list(conn.execute(text(ORGANIZATIONS), {"n": SAMPLES}))

    def part(name: str) -> str:
        start = rng.randrange(2, max(3, len(name) - 6))
        return name[start : start + 4]

    def grounds(raw: Any) -> list[str]:
        return list(raw) if isinstance(raw, list) else list(json.loads(raw))

    parts = [part(row[0]) for row in organizations]
    # The API refuses a broad text (search.text.too_broad) without a province or a court.
    provinces = [row[1] for row in two]
    return {
        "two_character_names": [SearchQuery(text=row[0]) for row in two],
        "three_character_names": [SearchQuery(text=row[0]) for row in three],
        "pinyin_full_names": [SearchQuery(text="".join(lazy_pinyin(row[0]))) for row in two + three][
            :SAMPLES
        ],
        "organisation_name_parts": [
            SearchQuery(text=text) for text in parts if not (too_broad(text) or names_no_one(text))
        ],
        "two_character_names_with_province_and_ground": [
            SearchQuery(text=row[0], province=row[1], ground=rng.choice(grounds(row[2]))) for row in two
        ],
        "single_character_surnames_with_province": [
            SearchQuery(text=rng.choice("王李张刘陈杨黄赵吴周"), province=rng.choice(provinces))
            for _ in range(SAMPLES)
        ],
    }


def _measure_queries(index: EmbeddedIndex, sets: dict[str, list[SearchQuery]]) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, queries in sets.items():
            if not queries:
                continue
            for query in queries[:20]:  # warm the page cache and the statement cache
                await index.search(query)
            timings, cpu, totals = [], [], []
            for query in queries:
                started, started_cpu = time.perf_counter(), time.process_time()
                result = await index.search(query)
                timings.append(time.perf_counter() - started)
                # This process's CPU (all threads; nothing else runs here meanwhile): on a
                # shared machine, less disturbed by the neighbours than wall time.
                cpu.append(time.process_time() - started_cpu)
                totals.append(result.total)
            cpu_ms = _percentiles(cpu)
            out[name] = _percentiles(timings) | {
                "cpu_p50_ms": cpu_ms["p50_ms"],
                "cpu_p99_ms": cpu_ms["p99_ms"],
                "median_total": statistics.median(totals),
                "max_total": max(totals),
            }
        return out

    return asyncio.run(run())


CAUGHT_UP = (
    "SELECT (SELECT last_seq FROM log_head) - coalesce("
    "(SELECT position FROM reader_cursors WHERE name = :cursor), 0)"
)
# The server's readers that work through every event (the watchlist reader too, even with no
# watchlist): until they are at the head (the steady state), their catch-up transactions
# would queue a removal behind them.
STEADY_STATE_READERS = (CURSOR, FEEDS_CURSOR, TRANSLOG_CURSOR, WATCHLIST_CURSOR)


def _wait_for_steady_state(engine: Any, settle_s: float) -> float:
    """Steady state first: the server's expiry job runs 5 s after start (a burst of expiry
    events at this scale), and the indexer, the feeds and the transparency log must have
    caught up with the log (from zero, on a freshly imported list). Returns the seconds
    that took."""
    started = time.monotonic()
    time.sleep(settle_s)
    while time.monotonic() < started + 1200:
        with engine.connect() as conn:
            behind = [
                conn.execute(text(CAUGHT_UP), {"cursor": name}).scalar() for name in STEADY_STATE_READERS
            ]
        if not any(behind):
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    raise RuntimeError("the server's log readers did not catch up in 20 minutes")


def _removal_to_gone(
    env: dict[str, str], signers_path: Path, engine: Any, rng: random.Random
) -> dict[str, Any]:
    signers = load_signers(signers_path)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    rows = _sample(engine, TO_REMOVE, REMOVALS)
    api_key = (
        _registry("client", "create", "bench", "--role", "admin", env=env).stdout.strip().splitlines()[-1]
    )
    port = _free_port()
    server_env = dict(env, REGISTRY_SCHEDULER="true", REGISTRY_PUBLIC_RATE_LIMIT="off")
    server = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", "serve", "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    latencies: list[float] = []
    today = today_in_china()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            wait_until_healthy(http)
            caught_up_s = _wait_for_steady_state(engine, settle_s=7)
            for listing_id, court_code in rows:
                key_id, raw = signers[court_code]
                removal = {
                    "listing_id": listing_id,
                    "reason": "performed",
                    "effective_on": today.isoformat(),
                    "triggered_on": today.isoformat(),
                    "basis_document": "（2026）京0105执恢1号",
                }
                envelope = sign_envelope(
                    "removal", removal, Ed25519PrivateKey.from_private_bytes(raw), key_id
                )
                started = time.perf_counter()
                response = http.post(
                    f"/v1/listings/{listing_id}/removal",
                    json=envelope,
                    headers={"Authorization": f"Bearer {api_key}"},
                )
                response.raise_for_status()
                while http.get(f"/v1/public/defaulters/{listing_id}").status_code != 404:
                    if time.perf_counter() - started > 30:
                        raise RuntimeError("a removed listing stayed in search for 30 s")
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - started)
                time.sleep(rng.random() * 0.5)  # removals arrive at random points of the interval
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "removals": len(latencies),
        "index_interval_s": float(Settings().search.index_interval_seconds),
        "p50_s": round(statistics.median(latencies), 3),
        "max_s": round(max(latencies), 3),
        "server_readers_caught_up_after_s": caught_up_s,
    }


def _build(root: Path, url: str, count: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The demo courts and `count` signed listings, not indexed."""
    env, imported = import_signed_listings(root, url, count)
    return env, {"import_seconds": imported["seconds"]}


def run_search_bench(
    *, count: int, database_url: str | None = None, dataset: Path | None = None
) -> dict[str, Any]:
    rng = random.Random(11)  # noqa: S311 - sampling queries, not secrets
    scratch_databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-search-bench-") as scratch:
        root = Path(scratch)
        secrets_file = root / "secrets.json"
        if database_url is None:
            url = f"sqlite:///{root / 'bench.db'}"
        else:
            url = fresh_postgres_database(
                database_url, "search_bench", prefix=database_url.rpartition("/")[2]
            )
            scratch_databases.append(url.rsplit("/", 1)[1])
        env, built = build_or_reuse(
            root, url, count, dataset if database_url is None else None, "search", _build
        )
        signers_path = root / "demo-keys.json"

        settings = Settings(
            database=DatabaseSettings(url=url),
            keys=KeySettings(secrets_file=secrets_file),
            server=ServerSettings(scheduler=False),
        )
        reindexed = reindex_now(settings)
        # What a deployment runs before serving a loaded list: the transparency log and the
        # feeds catch up here, so the server's readers start at the head.
        caught_up: dict[str, float] = {}
        for command in (("log", "checkpoint"), ("feeds", "sync")):
            started = time.perf_counter()
            _registry(*command, env=env)
            caught_up[" ".join(command)] = round(time.perf_counter() - started, 1)
        engine = reader_engine(settings.database.url)
        try:
            index = EmbeddedIndex(engine)
            queries = _measure_queries(index, _query_sets(engine, rng))
            removal = _removal_to_gone(env, signers_path, engine, rng)
            size = _index_size(engine)
        finally:
            engine.dispose()
        result: dict[str, Any] = {
            "benchmark": "search",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "database": "sqlite (embedded default)" if database_url is None else "postgresql",
            "listings": count,
            "indexed_documents": reindexed["documents"],
            "build": built,
            "reindex_seconds": reindexed["seconds"],
            "reindex_write_lock_seconds": reindexed.get("write_lock_seconds"),
            "catch_up_seconds": caught_up,
            "index_size_mb": size,
            "queries_in_process": queries,
            "removal_to_gone": removal,
        }
    if database_url is not None:
        drop_postgres_databases(database_url, scratch_databases)
    return result


SQLITE_SIZE = (
    "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'search%' OR name LIKE 'sqlite_autoindex_search%'"
)


def _index_size(engine: Any) -> float | None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            try:
                rows = conn.execute(text(SQLITE_SIZE)).scalar()
            except OperationalError:  # dbstat is a compile-time option of SQLite
                return None
        else:
            rows = conn.execute(text("SELECT pg_total_relation_size('search_docs')")).scalar()
    return round(int(rows or 0) / 2**20, 1)
