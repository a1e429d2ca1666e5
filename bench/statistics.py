"""`registry bench statistics`: statistics request latency at a list's size, over HTTP.

A scratch database (SQLite unless a PostgreSQL server is given) gets the demo courts plus
basic courts up to `--courts` in every province, and the counts that the statistics reader
would keep for `--listings` listings spread over five years (made here directly, through the
reader's own counting function: reading a million signed listings through the log costs
the log's build, which the other benches measure), loaded in period order as the reader
would first write them (docs/benchmarks.md says what that layout assumes). Then `registry
serve` answers, one request at a time, the queries the public page, the dashboard and an API
user send; each is timed from request to last byte. The reader's own pace is measured on real listing rows.
"""

from __future__ import annotations

import logging
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, text

from bench.common import (
    _free_port,
    _prepare_database,
    drop_postgres_databases,
    fresh_postgres_database,
    latency_summary,
    load_average,
    nearest_rank,
    serve_as_deployed,
    server_description,
    stop,
    timed_figure,
    wait_until_healthy,
)
from publishing.statistics.models import COUNT_COLUMNS, STATISTICS_COUNTS
from publishing.statistics.reader import Fact, Key, _add, compact, count_row
from registry.calendar import today_in_china
from registry.courts.models import Court
from registry.courts.services import add_court
from registry.db import create_sync_engine
from registry.identity.identifiers import COURT_ABBREVIATIONS
from registry.listings.schemas import GROUNDS, REMOVAL_REASONS, SPECIAL_SUBJECTS
from registry.timeutil import utcnow

YEARS = 5
REQUESTS = 200  # per query shape: enough for a p99 (bench.common.P99_MIN_SAMPLES)


def _courts(engine: Engine, wanted: int) -> list[tuple[str, str]]:
    with engine.begin() as conn:
        have = {row.code: row.province_code for row in conn.execute(select(Court.code, Court.province_code))}
        provinces = [(abbr, code) for abbr, code in COURT_ABBREVIATIONS.items() if code is not None]
        number = 0
        while len(have) < wanted:
            abbr, province = provinces[number % len(provinces)]
            code = f"{abbr}{9000 + number // len(provinces):04d}"
            number += 1
            if code not in have:
                add_court(conn, code, f"{abbr}基层人民法院{number}", province, actor="bench", now=utcnow())
                have[code] = province
    return [(code, province or "") for code, province in have.items()]


def _counts(courts: list[tuple[str, str]], count: int, today: date, seed: int = 3) -> dict[Key, list[int]]:
    """What the reader keeps for `count` listings: dated uniformly over five years, a quarter
    organisations, 3% special subjects, 45% removed within two years (90% of them on time)."""
    rng = random.Random(seed)  # noqa: S311 - a benchmark's mix, not a secret
    rnd = rng.random
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0] * len(COUNT_COLUMNS))
    first = today.toordinal() - YEARS * 365
    specials = list(SPECIAL_SUBJECTS)
    for _ in range(count):
        court, province = courts[int(rnd() * len(courts))]
        listed = first + int(rnd() * YEARS * 365)
        kind = "organization" if rnd() < 0.25 else "person"
        special = specials[int(rnd() * len(specials))] if rnd() < 0.03 else ""
        grounds = GROUNDS[int(rnd() * len(GROUNDS))]
        removed = listed + int(rnd() * 700) if rnd() < 0.45 else None
        if removed is not None and removed > today.toordinal():
            removed = None
        fact = Fact(
            court,
            province,
            kind,
            special,
            date.fromordinal(listed),
            grounds,
            None if removed is None else date.fromordinal(removed),
            None if removed is None else REMOVAL_REASONS[int(rnd() * len(REMOVAL_REASONS))],
            None if removed is None else rnd() < 0.9,
        )
        _add(deltas, fact, +1)
    return deltas


def _load_counts(engine: Engine, deltas: dict[Key, list[int]]) -> int:
    rows = [
        count_row(key, values)
        # In period order, as a reader following the log (which runs in time) first writes
        # them: a period's rows together, the layout the fillfactor keeps (migration 0018)
        # and `registry statistics compact` restores; a random order would put one to a page.
        for key, values in sorted(deltas.items(), key=lambda item: (item[0][1], item[0]))
    ]
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(STATISTICS_COUNTS), rows[start : start + 5000])
    if engine.dialect.name == "postgresql":
        # What autovacuum does within a minute of such a load: without statistics the planner
        # sorts every union of arms to group it instead of hashing. (SQLite is left without:
        # the queries are written for its planner with no statistics of this table.)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE statistics_counts"))
    return len(rows)


def _percentiles(samples: list[float]) -> dict[str, Any]:
    """p50, p95, p99 (nearest rank, over enough samples) and max, as every bench reports them."""
    out = latency_summary(samples)
    out["p95_ms"] = round(sorted(samples)[nearest_rank(len(samples), 95)] * 1000, 3)
    return out


def _shapes(today: date, courts: list[tuple[str, str]]) -> dict[str, tuple[str, dict[str, str]]]:
    year_ago = (today - timedelta(days=364)).isoformat()
    court, province = courts[len(courts) // 2]
    return {
        "national_by_month_12_months": ("/v1/statistics/listings", {}),
        "national_by_day_90_days": (
            "/v1/statistics/listings",
            {"interval": "day", "from": (today - timedelta(days=89)).isoformat()},
        ),
        "province_by_week_1_year": (
            "/v1/statistics/listings",
            {"interval": "week", "from": year_ago, "province": province},
        ),
        "national_by_month_5_years": (
            "/v1/statistics/listings",
            {"from": (today - timedelta(days=YEARS * 365)).isoformat()},
        ),
        "one_court_by_month_12_months": ("/v1/statistics/listings", {"court": court}),
        "by_province_1_year": ("/v1/statistics/breakdown", {"by": "province", "from": year_ago}),
        "by_court_1_year": ("/v1/statistics/breakdown", {"by": "court", "from": year_ago}),
        "by_court_in_province_1_year": (
            "/v1/statistics/breakdown",
            {"by": "court", "from": year_ago, "province": province},
        ),
        "by_special_subject_1_year": (
            "/v1/statistics/breakdown",
            {"by": "special_subject", "from": year_ago},
        ),
        "by_ground_1_year": ("/v1/statistics/breakdown", {"by": "ground", "from": year_ago}),
        "public_page_html": ("/statistics", {}),
        "public_chart_svg": ("/statistics/charts/series.svg", {}),
        "oversight_summary": ("/v1/oversight/summary", {"from": year_ago}),
    }


def _measure(port: int, shapes: dict[str, tuple[str, dict[str, str]]], admin_key: str) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    results: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, headers=headers) as http:
        wait_until_healthy(http)
        for name, (path, params) in shapes.items():
            warm_started = time.perf_counter()
            http.get(path, params=params).raise_for_status()  # warm: first plans, caches
            warm_up_ms = round((time.perf_counter() - warm_started) * 1000, 3)
            started_load = load_average()
            samples = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                response = http.get(path, params=params)
                response.read()
                samples.append(time.perf_counter() - started)
                response.raise_for_status()
            results[name] = timed_figure(_percentiles(samples) | {"warm_up_ms": warm_up_ms}, started_load)
    return results


def _compacted(
    url: str, port: int, shapes: dict[str, tuple[str, dict[str, str]]], admin_key: str
) -> dict[str, Any]:
    """`registry statistics compact` on PostgreSQL (timed), then the same requests again: the
    rows as the reader writes them against the rows in key order, on one load."""
    engine = create_sync_engine(url)
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            done = compact(conn)
        seconds = round(time.perf_counter() - started, 1)
    finally:
        engine.dispose()
    assert done is not None
    return {
        "compact_seconds": seconds,
        "pages_before": done.pages_before,
        "pages_after": done.pages_after,
        "latency": _measure(port, shapes, admin_key),
    }


def _admin_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service", "client", "create", "bench admin", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def run_statistics_bench(*, count: int, courts: int = 400, database_url: str | None = None) -> dict[str, Any]:
    scratch_databases: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-statistics-bench-") as scratch:
        root = Path(scratch)
        if database_url is None:
            url = f"sqlite:///{root / 'bench.db'}"
        else:
            url = fresh_postgres_database(database_url, "statistics", prefix=database_url.rpartition("/")[2])
            scratch_databases.append(url.rsplit("/", 1)[1])
        env = _prepare_database(url, root / "secrets.json", 1)
        engine = create_sync_engine(url)
        try:
            court_list = _courts(engine, courts)
            today = today_in_china()
            started = time.perf_counter()
            deltas = _counts(court_list, count, today)
            rows = _load_counts(engine, deltas)
            built = round(time.perf_counter() - started, 1)
        finally:
            engine.dispose()
        port = _free_port()
        # As deployed, background jobs on: the readers find no listing event (the counts were
        # loaded directly), so they only poll, as a server's do between batches.
        served_env = dict(env, REGISTRY_PUBLIC_RATE_LIMIT="off")
        servers = serve_as_deployed(port, served_env)
        try:
            shapes, admin_key = _shapes(today, court_list), _admin_key(env)
            latency = _measure(port, shapes, admin_key)
            compacted = None if database_url is None else _compacted(url, port, shapes, admin_key)
        finally:
            stop(servers)
    if database_url is not None:
        drop_postgres_databases(database_url, scratch_databases)
    return {
        "benchmark": "statistics",
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "courts": len(court_list),
        "years": YEARS,
        "count_rows": rows,
        "build_seconds": built,
        "count_order": "by period, as the reader first writes them",
        "server": server_description(served_env),
        "latency": latency,
        "slowest_p95_ms": max(shape["p95_ms"] for shape in latency.values()),
        "slowest_p99_ms": max(shape["p99_ms"] for shape in latency.values()),
        "compacted": compacted,
    }
