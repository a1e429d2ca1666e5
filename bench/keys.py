"""`registry bench keys`: a blind-index key rotation at a list's size.

A scratch database (SQLite unless a PostgreSQL server is given) gets `--listings` signed
listings through `registry import` and a bank watching a tenth as many subjects (through
the watchlist's own functions). Then, with a new key in front of the old one:

- the bank check's lookup (1,000 subjects, half listed, `run_check` in one read
  transaction) under the old key alone and under both keys, alternated round by round: what
  matching under two keys costs during a rotation;
- the recomputation, a page per write transaction as `registry keys rotate --blind-index`
  runs it, each page timed (how long the writer is held);
- `registry keys retire` (a full counting pass, then the retirement), as a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from bench.checks import _unlisted
from bench.common import (
    _registry,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
    latency_summary,
    load_average,
    timed_figure,
)
from registry.checks.schemas import CheckRequest, CheckSubject, WatchSubjectIn
from registry.checks.services import run_check
from registry.checks.stores import CoreStore
from registry.checks.watchlist import add_subjects, parse_watch_subjects
from registry.clients.services import create_client
from registry.identity.crypto import BlindIndex, Secrets, SecretsFile
from registry.identity.keystore import blind_index_key_id
from registry.identity.rotation import reindex_listings_page, reindex_watch_page
from registry.listings.models import Listing
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.runtime import Services
from registry.settings import DatabaseSettings, KeySettings, ServerSettings, Settings
from registry.timeutil import utcnow

ROUNDS = 5


def _settings(url: str, secrets_file: Path) -> Settings:
    return Settings(
        database=DatabaseSettings(url=url),
        keys=KeySettings(
            secrets_file=secrets_file, signing_key_file=secrets_file.with_name("signing-keys.json")
        ),
        server=ServerSettings(scheduler=False),
    )


def _listed(conn: Connection, secrets: Secrets, want: int) -> list[str]:
    rows = conn.execute(
        select(Listing.debtor_id_cipher)
        .where(Listing.debtor_id_type == "resident_id", Listing.status == "active")
        .limit(want)
    )
    return [secrets.keyring.decrypt(bytes(row[0]), PURPOSE_DEBTOR_ID).decode() for row in rows]


async def _watch(services: Services, numbers: list[str]) -> None:
    def bank(conn: Connection) -> str:
        return create_client(conn, "bench bank", "bank", None, actor="bench", now=utcnow())[0]

    client_id = await services.db.write(bank)
    secrets = services.secrets
    for start in range(0, len(numbers), 10_000):
        chunk = [WatchSubjectIn(id_number=n) for n in numbers[start : start + 10_000]]
        parsed = parse_watch_subjects(chunk, secrets.blind_index, secrets.keyring)
        await services.db.write(add_subjects, client_id, parsed, utcnow())


async def _check_ms(services: Services, request: CheckRequest, blind: BlindIndex) -> tuple[float, int]:
    def check(conn: Connection) -> int:
        outcome = run_check(
            CoreStore(conn), client_id="bench", request=request, blind_index=blind, now=utcnow()
        )
        return sum(1 for result in outcome.results if result.listed)

    started = time.perf_counter()
    listed = await services.db.read(check)
    return (time.perf_counter() - started) * 1000, listed


async def _measure(services: Services, old: bytes, new: bytes, request: CheckRequest) -> dict[str, Any]:
    """Lookups with one key and with two, alternated; then the timed recomputation."""
    single, both = BlindIndex(old), BlindIndex(new, old)
    await _check_ms(services, request, single)  # warm-up: connections, caches
    rounds = []
    for _ in range(ROUNDS):
        round_load = load_average()
        one_ms, one_listed = await _check_ms(services, request, single)
        two_ms, two_listed = await _check_ms(services, request, both)
        rounds.append(
            timed_figure(
                {
                    "one_key_ms": round(one_ms, 1),
                    "two_keys_ms": round(two_ms, 1),
                    "listed": [one_listed, two_listed],
                },
                round_load,
            )
        )
    secrets = services.secrets
    pages: list[float] = []
    recomputed = 0
    started_load = load_average()
    started = time.perf_counter()
    listing_after: str | None = None
    while True:
        page_started = time.perf_counter()
        found, listing_after, _ = await services.db.write(reindex_listings_page, secrets, listing_after)
        pages.append(time.perf_counter() - page_started)
        recomputed += found.listings
        if listing_after is None:
            break
    watch_after: tuple[str, bytes] | None = None
    while True:
        page_started = time.perf_counter()
        found, watch_after, _ = await services.db.write(reindex_watch_page, secrets, watch_after)
        pages.append(time.perf_counter() - page_started)
        recomputed += found.watch_subjects
        if watch_after is None:
            break
    elapsed = time.perf_counter() - started
    ratios = sorted(r["two_keys_ms"] / r["one_key_ms"] for r in rounds)
    return {
        "check_batch_1000": {
            "one_key_ms_median": statistics.median(r["one_key_ms"] for r in rounds),
            "two_keys_ms_median": statistics.median(r["two_keys_ms"] for r in rounds),
            "two_vs_one_ratio_median": round(statistics.median(ratios), 3),
            "rounds": rounds,
        },
        "recompute": timed_figure(
            {
                "rows_rewritten": recomputed,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(recomputed / elapsed) if elapsed else None,
                "page_transaction": latency_summary(pages),
                "pages": len(pages),
            },
            started_load,
        ),
    }


def run_keys_bench(*, count: int, database_url: str | None = None) -> dict[str, Any]:
    scratch: list[str] = []
    with tempfile.TemporaryDirectory(prefix="registry-bench-keys-") as directory:
        root = Path(directory)
        if database_url is None:
            url = f"sqlite:///{root / 'bench.db'}"
        else:
            url = fresh_postgres_database(database_url, "keys")
            scratch.append(url.rsplit("/", 1)[1])
        env, imported = import_signed_listings(root, url, count)
        settings = _settings(url, root / "secrets.json")
        watched = max(1, count // 10)

        async def setup() -> list[str]:
            services = Services.create(settings)
            try:
                listed = await services.db.read(_listed, services.secrets, 500)
                ours = listed[: watched // 2]
                await _watch(services, ours + [s["id_number"] for s in _unlisted(watched - len(ours), 5)])
                return listed
            finally:
                await services.close()

        listed = asyncio.run(setup())
        subjects = [CheckSubject(id_number=n) for n in listed + [s["id_number"] for s in _unlisted(500, 9)]]
        request = CheckRequest(subjects=subjects[:1000], purpose="loan_application", reference="bench")

        secrets_file = SecretsFile(root / "secrets.json")
        keys, active, old, _ = secrets_file.read() or ({}, "", b"", None)
        new = os.urandom(32)
        secrets_file.save(keys, active, new, old)

        async def rotate() -> dict[str, Any]:
            services = Services.create(settings)
            try:
                return await _measure(services, old, new, request)
            finally:
                await services.close()

        figures = asyncio.run(rotate())
        retire_load = load_average()
        started = time.perf_counter()
        retired = _registry("keys", "retire", blind_index_key_id(old), env=env)
        retire_s = time.perf_counter() - started
    if scratch and database_url is not None:
        drop_postgres_databases(database_url, scratch)
    return {
        "benchmark": "keys",
        "database": "sqlite (embedded default)" if database_url is None else "postgresql",
        "listings": count,
        "watch_subjects": watched,
        "import": imported,
        **figures,
        "retire": timed_figure(
            {"seconds": round(retire_s, 2), "output": retired.stdout.strip().splitlines()[-1]}, retire_load
        ),
    }
