"""`registry bench search`: public search on a scratch database of N signed listings. JSON out.

The database is built as `registry bench ingest` builds it (demo courts, signed envelopes,
`registry import`), or with `--bulk N` by the bulk path (`bench.bulk`: the same generator,
stored without the envelope round trip) with its last N listings through `registry import`;
with `--dataset DIR` it is kept (SQLite: the file in DIR; PostgreSQL: a database on the
server, named in DIR) and copied on later runs, then:
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
import math
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
from pypinyin import lazy_pinyin
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from bench.common import (
    BULK_DATASET,
    _batches,
    _free_port,
    _registry,
    build_or_reuse,
    bulk_listings,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
    latency_summary,
    load_average,
    run_background_readers,
    serve_as_deployed,
    server_description,
    stop,
    timed_figure,
    wait_for_readers,
    wait_until_healthy,
)
from bench.removal import RemovalRun, Target, run_phase
from bench.sync import _sink
from demo.seed import load_signers, write_envelope_file
from publishing.sync.services import create_subscription
from registry.calendar import today_in_china
from registry.clients.services import create_client
from registry.endpoints import PushPolicy
from registry.eventlog.services import head
from registry.identity.crypto import load_secrets
from registry.listings.ingest import worker_count
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.runtime import Services
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from registry.timeutil import utcnow
from search.embedded import EmbeddedIndex, reader_engine
from search.interface import SearchQuery
from search.maintenance import reindex_now
from search.text import names_no_one, too_broad

SAMPLES = 200
REMOVALS = 100


def _percentiles(samples: list[float]) -> dict[str, Any]:
    return latency_summary(samples)


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
    "SELECT id, court_code, debtor_name, debtor_id_cipher FROM listings WHERE status = 'active' "
    "AND expires_on IS NULL AND debtor_kind = 'person' ORDER BY random() LIMIT :n"
)
# Characters no demo name holds: names made of them find nothing, the answer most searches
# of a list of defaulters get, and it must be as fast as any other.
RARE = "龘靐齉爩鱻麤龖厵灥驫"
# Batches made for the removals during batches: about 27 removals fell within one 10,000-
# listing batch on this machine (5-8 s each), and a removal is sent only while one is in
# flight; the batches left over when the removals are done are not sent.
REMOVALS_PER_BATCH = 20
MIN_BATCHES = 3


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
        "names_that_find_nothing": [
            SearchQuery(text=rng.choice("王李张刘陈杨黄赵吴周") + rng.choice(RARE) + rng.choice(RARE))
            for _ in range(SAMPLES)
        ],
        "pinyin_that_finds_nothing": [
            SearchQuery(text="".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(9)))
            for _ in range(SAMPLES)
        ],
    }


def _measure_queries(index: EmbeddedIndex, sets: dict[str, list[SearchQuery]]) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, queries in sets.items():
            if not queries:
                continue
            warm_started = time.perf_counter()
            for query in queries[:20]:  # warm the page cache and the statement cache
                await index.search(query)
            warm_up_ms = round((time.perf_counter() - warm_started) * 1000, 1)
            load = load_average()
            timings, cpu, totals = [], [], []
            past_limit = 0  # answers whose total is a lower bound (REGISTRY_SEARCH_EXACT_COUNT_LIMIT)
            for query in queries:
                started, started_cpu = time.perf_counter(), time.process_time()
                result = await index.search(query)
                timings.append(time.perf_counter() - started)
                # This process's CPU (all threads; nothing else runs here meanwhile): on a
                # shared machine, less disturbed by the neighbours than wall time.
                cpu.append(time.process_time() - started_cpu)
                totals.append(result.total)
                past_limit += not result.total_exact
            cpu_ms = _percentiles(cpu)
            out[name] = timed_figure(
                _percentiles(timings)
                | {f"cpu_{key}": value for key, value in cpu_ms.items() if key != "samples"}
                | {
                    "warm_up_20_queries_ms": warm_up_ms,
                    "median_total": statistics.median(totals),
                    "max_total": max(totals),
                    "totals_past_the_count_limit": past_limit,
                },
                load,
            )
        return out

    return asyncio.run(run())


def _targets(engine: Any, settings: Settings, count: int) -> list[Target]:
    """Open-ended listings of persons (the expiry job cannot remove them first), each with
    the ID number a bank would check (decrypted here, never printed)."""
    keyring = load_secrets(settings).keyring
    with engine.connect() as conn:
        rows = list(conn.execute(text(TO_REMOVE), {"n": count}))
    return [
        Target(
            row.id,
            row.court_code,
            row.debtor_name,
            keyring.decrypt(bytes(row.debtor_id_cipher), PURPOSE_DEBTOR_ID).decode(),
        )
        for row in rows
    ]


LOOPBACK_PUSHES = PushPolicy(networks=(ip_network("127.0.0.1"),), allow_http=True)


def _subscribe_receiver(settings: Settings, url: str) -> None:
    """An agency with a `credit_reference` push subscription from the log's head."""

    async def setup() -> None:
        services = Services.create(settings)
        try:
            now = utcnow()
            async with services.db.writer.begin() as conn:
                agency, _ = await conn.run_sync(
                    lambda c: create_client(c, "bench agency", "agency", None, actor="bench", now=now)
                )
                last_seq = await conn.run_sync(lambda c: head(c)[0])
                await conn.run_sync(
                    lambda c: create_subscription(
                        c,
                        client_id=agency,
                        profile="credit_reference",
                        mode="push",
                        endpoint_url=url,
                        from_seq=last_seq,
                        actor="bench",
                        policy=LOOPBACK_PUSHES,
                        now=now,
                    )
                )
        finally:
            await services.close()

    asyncio.run(setup())


def _batch_sender(
    base: str, admin_key: str, bodies: list[bytes]
) -> Callable[[threading.Event, threading.Event], dict[str, Any]]:
    def ingest(in_flight: threading.Event, stop: threading.Event) -> dict[str, Any]:
        seconds: list[float] = []
        created = 0
        with httpx.Client(base_url=base, timeout=600) as http:
            for body in bodies:
                if stop.is_set():
                    break
                in_flight.set()
                started = time.perf_counter()
                response = http.post(
                    "/v1/listings/batch",
                    content=body,
                    headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"},
                )
                seconds.append(round(time.perf_counter() - started, 2))
                in_flight.clear()
                response.raise_for_status()
                created += int(response.json()["summary"]["created"])
        return {"batches": len(seconds), "seconds_each": seconds, "created": created}

    return ingest


def _batch_bodies(root: Path, signers_path: Path, batches: int, size: int) -> list[bytes]:
    """`batches` bodies of `size` new signed listings each (another seed than the list's)."""
    path = root / "batch-envelopes.jsonl"
    write_envelope_file(
        path,
        load_signers(signers_path),
        batches * size,
        seed=99,
        today=today_in_china(),
        workers=worker_count(0),
    )
    bodies = list(_batches(path, size))
    path.unlink()
    return bodies


def _http_params(query: SearchQuery) -> dict[str, Any]:
    params = {"q": query.text, "province": query.province, "ground": query.ground, "court": query.court}
    return {name: value for name, value in params.items() if value is not None}


def _measure_http(http: httpx.Client, sets: dict[str, list[SearchQuery]]) -> dict[str, Any]:
    """The same queries over HTTP against `registry serve` (jobs on): parsing, the engine,
    serialisation and the loopback round trip. Warm-up (20 queries a kind) timed apart."""
    out: dict[str, Any] = {}
    for name, queries in sets.items():
        if not queries:
            continue
        warm_started = time.perf_counter()
        for query in queries[:20]:
            http.get("/v1/public/defaulters", params=_http_params(query)).raise_for_status()
        warm_up_s = time.perf_counter() - warm_started
        load = load_average()
        timings, totals = [], []
        for query in queries:
            started = time.perf_counter()
            response = http.get("/v1/public/defaulters", params=_http_params(query))
            timings.append(time.perf_counter() - started)
            response.raise_for_status()
            totals.append(int(response.json()["total"]))
        out[name] = timed_figure(
            latency_summary(timings)
            | {
                "warm_up_20_queries_ms": round(warm_up_s * 1000, 1),
                "median_total": statistics.median(totals),
                "max_total": max(totals),
            },
            load,
        )
    return out


def _served(
    root: Path,
    env: dict[str, str],
    settings: Settings,
    engine: Any,
    sets: dict[str, list[SearchQuery]],
    removals: int,
    batch_size: int,
) -> dict[str, Any]:
    """`registry serve` as deployed (jobs on): public search over HTTP, then removal to gone
    everywhere, idle and during 10,000-listing batches."""
    signers_path = root / "demo-keys.json"
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    targets = _targets(engine, settings, 2 * removals)
    admin_key = (
        _registry("client", "create", "bench", "--role", "admin", env=env).stdout.strip().splitlines()[-1]
    )
    bank_key = (
        _registry("client", "create", "bench bank", "--role", "bank", env=env).stdout.strip().splitlines()[-1]
    )
    batches = max(MIN_BATCHES, math.ceil(removals / REMOVALS_PER_BATCH))
    bodies = _batch_bodies(root, signers_path, batches, batch_size) if batch_size else []
    port = _free_port()
    server_env = dict(
        env,
        REGISTRY_PUBLIC_RATE_LIMIT="off",
        REGISTRY_CHECK_RATE_PER_SECOND="1000000000",
        REGISTRY_CHECK_DAILY_QUOTA=str(10**15),
        # The bench's push receiver listens on loopback over plain http: open exactly that.
        REGISTRY_PUSH_ALLOWED_NETWORKS="127.0.0.1",
        REGISTRY_PUSH_ALLOW_HTTP="true",
    )
    # The server's log (warnings and errors): where a surface that never empties says why.
    log_path = Path(os.environ.get("REGISTRY_BENCH_SERVER_LOG", root / "server.log"))
    with _sink() as receiver, log_path.open("ab") as server_log:
        _subscribe_receiver(settings, receiver.url)
        servers = serve_as_deployed(port, server_env, stderr=server_log)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                wait_until_healthy(http)
                caught_up_s = wait_for_readers(engine, settle_s=7)
                over_http = _measure_http(http, sets)
                position = http.get("/v1/publications", params={"after": 0, "limit": 1}).json()["position"]
            run = RemovalRun(
                base=base,
                admin_key=admin_key,
                bank_key=bank_key,
                signers=load_signers(signers_path),
                today=today_in_china(),
                pushed_at=receiver.removed_at.get,
                delta_after=position,
            )
            idle = run_phase(run, targets[:removals], spacing=(0.05, 0.5))
            during = (
                run_phase(
                    run,
                    targets[removals:],
                    spacing=(0.02, 0.1),
                    batch=_batch_sender(base, admin_key, bodies),
                )
                if bodies
                else None
            )
        finally:
            stop(servers)
    return {
        "server": server_description(server_env),
        "server_readers_caught_up_after_s": caught_up_s,
        "queries_over_http": over_http,
        "removal_to_gone_everywhere": {
            "intervals_s": {
                "search_index": float(settings.search.index_interval_seconds),
                "feeds_reader": float(settings.feeds.publications_interval_seconds),
                "push_worker": float(settings.sync.interval_seconds),
            },
            "idle": idle,
            f"during_{batch_size}_listing_batches": during,
        },
    }


def _build(root: Path, url: str, count: int) -> tuple[dict[str, str], dict[str, Any]]:
    """The demo courts and `count` signed listings, not indexed."""
    env, imported = import_signed_listings(root, url, count)
    return env, {"import_seconds": imported["seconds"]}


def _bulk_build(on_top: int) -> Callable[[Path, str, int], tuple[dict[str, str], dict[str, Any]]]:
    """The demo courts and `count` listings, all but `on_top` by the bulk path, not indexed."""

    def build(root: Path, url: str, count: int) -> tuple[dict[str, str], dict[str, Any]]:
        return bulk_listings(root, url, count, on_top)

    return build


def _settings(root: Path, url: str) -> Settings:
    secrets_file = root / "secrets.json"
    return Settings(
        database=DatabaseSettings(url=url),
        keys=KeySettings(
            secrets_file=secrets_file, signing_key_file=secrets_file.with_name("signing-keys.json")
        ),
        server=ServerSettings(scheduler=False),
    )


def catch_up(root: Path, url: str, env: dict[str, str]) -> dict[str, Any]:
    """What a deployment runs before serving a loaded list: a full reindex (timed), the
    transparency log, the feeds and the statistics brought to the head by their commands
    (the statistics counted in SQL: replaying the log takes hours at millions), then the
    workers' other readers (notices, watchlist) by `registry worker`, so that the server
    starts at the head."""
    reindexed = reindex_now(_settings(root, url))
    caught_up: dict[str, float] = {}
    for command in (("log", "checkpoint"), ("feeds", "sync"), ("statistics", "rebuild")):
        started = time.perf_counter()
        _registry(*command, env=env)
        caught_up[" ".join(command)] = round(time.perf_counter() - started, 1)
    caught_up["registry worker (the other readers)"] = run_background_readers(env, url)
    return {"reindex": reindexed, "catch_up_seconds": caught_up}


def run_search_bench(
    *,
    count: int,
    database_url: str | None = None,
    dataset: Path | None = None,
    removals: int = REMOVALS,
    batch_size: int = 10_000,
    bulk_on_top: int | None = None,
) -> dict[str, Any]:
    """`bulk_on_top`: build the list by the bulk path (`bench.bulk`), this many of its
    listings through `registry import` on top (the import figure at this size)."""
    rng = random.Random(11)  # noqa: S311 - sampling queries, not secrets
    scratch_databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-search-bench-") as scratch:
        root = Path(scratch)
        if database_url is None:
            url = f"sqlite:///{root / 'bench.db'}"
        else:
            url = fresh_postgres_database(
                database_url, "search_bench", prefix=database_url.rpartition("/")[2]
            )
            scratch_databases.append(url.rsplit("/", 1)[1])
        env, built = build_or_reuse(
            root,
            url,
            count,
            dataset,
            "search" if bulk_on_top is None else BULK_DATASET,
            _build if bulk_on_top is None else _bulk_build(bulk_on_top),
            catch_up,
        )
        prepared = built.pop("prepared")
        # What a deployed worker does 30 s after it starts (search.recent), before any query.
        started = time.perf_counter()
        recent_index = json.loads(_registry("search", "recent-index", env=env).stdout)
        recent_index["seconds"] = round(time.perf_counter() - started, 1)
        settings = _settings(root, url)
        engine = reader_engine(settings.database.url)
        try:
            index = EmbeddedIndex(engine)
            sets = _query_sets(engine, rng)
            queries = _measure_queries(index, sets)
            served = _served(root, env, settings, engine, sets, removals, batch_size)
            size = _index_size(engine)
        finally:
            engine.dispose()
        result: dict[str, Any] = {
            "benchmark": "search",
            "database": "sqlite (embedded default)" if database_url is None else "postgresql",
            "listings": count,
            "indexed_documents": prepared["reindex"]["documents"],
            "build": built,
            # With a kept dataset these were measured once, when it was built (`reused_from`).
            "reindex_seconds": prepared["reindex"]["seconds"],
            "reindex_write_lock_seconds": prepared["reindex"].get("write_lock_seconds"),
            "catch_up_seconds": prepared["catch_up_seconds"],
            "index_size_mb": size,
            "recent_index": recent_index,
            "queries_in_process": queries,
            **served,
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
