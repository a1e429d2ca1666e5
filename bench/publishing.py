"""`registry bench feeds|export|checkpoint`: issue 6's figures on a scratch database.

The database is built like `registry bench ingest` builds it: the demo courts, N signed
listings through `registry import`, then 2% of them expired by `registry expire` so that
feeds and exports carry removals. Every measured step runs as a real process: the CLI
commands as subprocesses, the feeds through `registry serve` over loopback HTTP.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from bench.common import (
    BULK_DATASET,
    P99_MIN_SAMPLES,
    PeakMemory,
    _free_port,
    build_or_reuse,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
    latency_summary,
    load_average,
    nearest_rank,
    serve_as_deployed,
    server_description,
    stop,
    timed_figure,
    wait_until_healthy,
)
from bench.search import _bulk_build, catch_up
from registry.calendar import today_in_china
from registry.courts.models import Court
from registry.db import create_sync_engine
from registry.identity.registry_key import load_registry_signer
from registry.listings.models import Listing
from registry.settings import DatabaseSettings, KeySettings, Settings
from registry.translog.merkle import consistency_proof
from registry.translog.services import inclusion, latest_checkpoint, subtree_reader

REMOVED_SHARE = 0.02


def _timed(
    args: list[str], env: dict[str, str]
) -> tuple[float, PeakMemory, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "service", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with PeakMemory(process.pid) as peak:
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"registry {' '.join(args)} failed: {stderr[-2000:]}")
    completed = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    return seconds, peak, completed


def _build(root: Path, url: str, count: int) -> tuple[dict[str, str], dict[str, Any]]:
    env, imported = import_signed_listings(root, url, count)
    env.update(_bench_settings(root))  # `registry expire` below signs
    today = today_in_china()
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            chosen = select(Listing.id).order_by(Listing.id).limit(int(count * REMOVED_SHARE))
            conn.execute(
                update(Listing).where(Listing.id.in_(chosen)).values(expires_on=today - timedelta(days=1))
            )
    finally:
        engine.dispose()
    expire_seconds, _, _ = _timed(["expire"], env)
    return env, {
        "import_seconds": imported["seconds"],
        "expired": int(count * REMOVED_SHARE),
        "expire_seconds": round(expire_seconds, 2),
    }


def _bench_settings(root: Path) -> dict[str, str]:
    return {
        "REGISTRY_SIGNING_KEY_FILE": str(root / "signing-keys.json"),
        "REGISTRY_EXPORT_DIR": str(root / "exports"),
    }


def _percentiles(samples: list[float]) -> dict[str, Any]:
    """p50 and max always; p95 and p99 only over enough samples (bench.common.latency_summary)."""
    out = latency_summary(samples)
    if len(samples) >= P99_MIN_SAMPLES:
        out["p95_ms"] = round(sorted(samples)[nearest_rank(len(samples), 95)] * 1000, 3)
    return out


def _feeds(env: dict[str, str], url: str, requests: int) -> dict[str, Any]:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # thousands of requests, one line each
    sync_seconds, _, _ = _timed(["feeds", "sync"], env)
    engine = create_sync_engine(url, writer=False)
    try:
        with engine.connect() as conn:
            courts = [
                (row.code, row.province_code) for row in conn.execute(select(Court.code, Court.province_code))
            ]
    finally:
        engine.dispose()
    port = _free_port()
    # One client sends thousands of requests: the public rate limit would measure itself.
    servers = serve_as_deployed(port, dict(env, REGISTRY_PUBLIC_RATE_LIMIT="off"))
    rng = random.Random(5)  # noqa: S311 - a benchmark's mix, not a secret
    paths = ["/feeds/atom.xml", "/feeds/rss.xml", "/feeds/feed.json"]
    latencies: dict[str, list[float]] = {
        "first_page": [],
        "filtered": [],
        "random_older_page": [],
        "not_modified": [],
    }
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            wait_until_healthy(http)

            def timed(
                kind: str, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
            ) -> httpx.Response:
                started = time.perf_counter()
                response = http.get(path, params=params, headers=headers)
                latencies[kind].append(time.perf_counter() - started)
                if response.status_code not in (200, 304):
                    raise RuntimeError(f"{path} {params}: {response.status_code}")
                return response

            warm_started = time.perf_counter()
            for _ in range(50):  # warm-up: connections, statement caches, page cache
                http.get(rng.choice(paths))
            warm_up_s = time.perf_counter() - warm_started
            measured_load = load_average()
            for _ in range(requests):
                path = rng.choice(paths)
                code, province = rng.choice(courts)
                first = timed("first_page", path, {})
                choice = rng.random()
                params = (
                    {"province": province}
                    if choice < 0.4
                    else {"court": code}
                    if choice < 0.8
                    else {"kind": rng.choice(["person", "organization"])}
                )
                timed("filtered", path, params)
                if path == "/feeds/feed.json" and first.json()["items"]:
                    # An older page at a random place: never seen before, so rendered afresh.
                    newest = first.json()["items"][0]["_registry"]["seq"]
                    timed("random_older_page", path, {"before": rng.randrange(2, newest + 1)})
                timed("not_modified", path, {}, {"If-None-Match": first.headers["etag"]})
    finally:
        stop(servers)
    every = [sample for samples in latencies.values() for sample in samples]
    return {
        "reader_catch_up_seconds": round(sync_seconds, 2),
        "server": server_description(env),
        "warm_up_50_requests_s": round(warm_up_s, 3),
        "all_requests": timed_figure(_percentiles(every), measured_load),
        **{kind: _percentiles(samples) for kind, samples in latencies.items() if len(samples) > 1},
    }


def _export(env: dict[str, str]) -> dict[str, Any]:
    """Today's export (every listing was published today: the change file is as long as the
    list, the worst case), then yesterday's (the full list alone)."""
    figures = {}
    yesterday = today_in_china() - timedelta(days=1)
    for label, args in (("today", []), ("without_changes", ["--date", yesterday.isoformat()])):
        seconds, peak, completed = _timed(["export", "run", *args], env)
        manifest = json.loads(completed.stdout)
        figures[label] = {
            "seconds": round(seconds, 2),
            "peak_pss_mb": round(peak.peak_pss / 2**20),
            "peak_rss_mb": round(peak.peak / 2**20),
            "rows": {f["name"]: f["rows"] for f in manifest["files"]},
            "files_mb": {f["name"]: round(f["bytes"] / 2**20, 1) for f in manifest["files"]},
        }
    return figures


def _checkpoint(env: dict[str, str], url: str, samples: int) -> dict[str, Any]:
    seconds, peak, _ = _timed(["log", "checkpoint"], env)
    settings = Settings(
        database=DatabaseSettings(url=url),
        keys=KeySettings(signing_key_file=Path(env["REGISTRY_SIGNING_KEY_FILE"])),
    )
    signer = load_registry_signer(settings)
    engine = create_sync_engine(url, writer=False)
    rng = random.Random(9)  # noqa: S311 - a benchmark's choice of leaves
    proofs: list[float] = []
    try:
        with engine.connect() as conn:
            latest = latest_checkpoint(conn)
            assert latest is not None
            size = latest.tree_size
            for _ in range(samples):
                started = time.perf_counter()
                inclusion(conn, signer, seq=None, leaf_index=rng.randrange(size), size=size)
                proofs.append(time.perf_counter() - started)
            # Consistency proofs from earlier tree sizes (the proof needs no checkpoint at them).
            consistency_times: list[float] = []
            for _ in range(samples):
                first = rng.randrange(1, size)
                started = time.perf_counter()
                consistency_proof(subtree_reader(conn), first, size)
                consistency_times.append(time.perf_counter() - started)
    finally:
        engine.dispose()
    return {
        "checkpoint_seconds": round(seconds, 2),
        "peak_pss_mb": round(peak.peak_pss / 2**20),
        "peak_rss_mb": round(peak.peak / 2**20),
        "tree_size": size,
        "inclusion_proof": _percentiles(proofs),
        "consistency_proof": _percentiles(consistency_times),
    }


def run_publishing_bench(
    what: str,
    *,
    count: int,
    database_url: str | None = None,
    requests: int = 1000,
    dataset: Path | None = None,
    bulk_on_top: int | None = None,
) -> dict[str, Any]:
    """`bulk_on_top`: the list the bulk path builds and the search bench keeps (SQLite or
    PostgreSQL, `dataset` shared with it), prepared as that bench prepares it; otherwise N
    listings through `registry import` with 2% expired (`dataset`: SQLite only)."""
    scratch: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-bench-") as folder:
        root = Path(folder)
        if database_url is None:
            url = f"sqlite:///{root / 'bench'}.db"
        else:
            # Named after the admin database, so a scratch database keeps its prefix.
            url = fresh_postgres_database(database_url, what, prefix=database_url.rpartition("/")[2])
            scratch.append(url.rsplit("/", 1)[1])

        try:
            if bulk_on_top is None:
                env, built = build_or_reuse(
                    root, url, count, dataset if database_url is None else None, "publishing", _build
                )
            else:
                env, built = build_or_reuse(
                    root, url, count, dataset, BULK_DATASET, _bulk_build(bulk_on_top), catch_up
                )
            env.update(_bench_settings(root))
            runners: dict[str, Callable[[], dict[str, Any]]] = {
                "feeds": lambda: _feeds(env, url, requests),
                "export": lambda: _export(env),
                "checkpoint": lambda: _checkpoint(env, url, requests),
            }
            figures = runners[what]()
        finally:
            if scratch and database_url is not None:
                drop_postgres_databases(database_url, scratch)
    return {
        "benchmark": what,
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "build": built,
        what: figures,
    }
