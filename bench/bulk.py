"""A bulk path to millions of listings, for the search and sizes benches only.

`registry import` of a million signed listings takes twenty minutes on a busy machine: the
envelopes are written to a file, read back, decoded and verified one by one, and stored in
chunks of 500. The search and sizes benches measure what follows (queries, index sizes),
so they may build their list this way instead: worker processes generate listings with the
same demo generator and seed scheme (names, provinces, organisations, grounds as
`registry bench ingest` has them), sign each with its court's demo key, prepare it with
the real `Preparer` (validation, encryption, blind index; the signature check skipped, as
the worker made the signature itself) and store it with the real `publish_listings`
(listings, events, the log's hash chain) in transactions of BULK_TRANSACTION listings,
nothing in between. So every row is what ingest would have written, only faster.

The ingest figure itself never comes from here: `registry bench ingest` measures the real
path, and `--bulk` runs of the search bench add their own `registry import` on top of the
bulk-loaded list (see `bench.search`).
"""

from __future__ import annotations

import hashlib
import random
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from demo.data import DemoGenerator, demo_courts
from demo.seed import SignerMap, load_signers
from registry.calendar import today_in_china
from registry.db import create_sync_engine
from registry.identity.canonical import canonical_json
from registry.identity.crypto import load_secrets
from registry.listings.importer import analyze_if_grown
from registry.listings.ingest import worker_count
from registry.listings.prepare import PURPOSE_SIGNED, PreparedListing, Preparer, _convert
from registry.listings.schemas import ListingIn
from registry.listings.services import load_context, publish_listings
from registry.settings import DatabaseSettings, KeySettings, Settings
from registry.timeutil import utcnow

BULK_TRANSACTION = 5_000
BULK_ACTOR = "operator:bench-bulk"
DESCRIPTION = (
    "bulk path (bench.bulk): demo generator, signed, prepared by the real Preparer without "
    "re-verifying its own signatures, stored by the real publish_listings "
    f"{BULK_TRANSACTION:,} listings a transaction; not an ingest figure"
)


def _prepared(
    preparer: Preparer, body: dict[str, Any], key_id: str, private: Ed25519PrivateKey
) -> PreparedListing:
    """`Preparer.listing` of the signed body, less the check of the signature just made."""
    signed = canonical_json(body)
    prepared = preparer._validate_listing(_convert(body, ListingIn, "/listing"))
    prepared.key_id = key_id
    prepared.signature = private.sign(signed)
    prepared.content_sha256 = hashlib.sha256(signed).digest()
    prepared.signed_cipher = preparer.keyring.encrypt(signed, PURPOSE_SIGNED)
    return prepared


def _store_slice(args: tuple[str, Path, SignerMap, int, int, str]) -> int:
    """One worker: `count` listings of generator `seed`, stored BULK_TRANSACTION at a time."""
    url, secrets_file, signers, count, seed, today_iso = args
    today = date.fromisoformat(today_iso)
    settings = Settings(database=DatabaseSettings(url=url), keys=KeySettings(secrets_file=secrets_file))
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            preparer = Preparer(load_context(conn, load_secrets(settings), utcnow(), set()))
        courts = [court for court in demo_courts() if court.code in signers]
        keys = {
            code: (kid, Ed25519PrivateKey.from_private_bytes(raw)) for code, (kid, raw) in signers.items()
        }
        generator = DemoGenerator(seed)
        pick = random.Random(seed ^ 0x5EED)  # noqa: S311 - demo data, as demo.seed draws it
        stored = 0
        while stored < count:
            size = min(BULK_TRANSACTION, count - stored)
            prepared: list[Any] = []
            for _ in range(size):
                court = pick.choice(courts)
                key_id, private = keys[court.code]
                prepared.append(_prepared(preparer, generator.listing(court, today), key_id, private))
            with engine.begin() as conn:
                results = publish_listings(conn, prepared, actor=BULK_ACTOR, now=utcnow())
            refused = [result.problem for result in results if result.outcome != "created"]
            if refused:
                raise RuntimeError(f"the bulk path refused {len(refused)} listings: {refused[0]}")
            stored += size
        return stored
    finally:
        engine.dispose()


def bulk_load(url: str, root: Path, count: int, *, seed: int = 7, workers: int = 0) -> dict[str, Any]:
    """`count` listings into the database at `url`, prepared as `bench.common._prepare_database`
    leaves it (demo courts, their keys in `root`). Returns the figures of the load."""
    workers = worker_count(workers)
    signers = load_signers(root / "demo-keys.json")
    per = -(-count // workers)
    today = today_in_china().isoformat()
    slices = [
        (url, root / "secrets.json", signers, min(per, count - w * per), seed * 1000 + w, today)
        for w in range(workers)
        if count - w * per > 0
    ]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        stored = sum(pool.map(_store_slice, slices))
    seconds = time.perf_counter() - started
    analyze_started = time.perf_counter()
    _analyze(url, stored)
    return {
        "path": DESCRIPTION,
        "seconds": round(seconds, 2),
        "listings_per_s": round(stored / seconds),
        "created": stored,
        "workers": workers,
        "analyze_seconds": round(time.perf_counter() - analyze_started, 2),
    }


def _analyze(url: str, created: int) -> None:
    """What `registry import` ends with on PostgreSQL (`analyze_if_grown`): without table
    statistics, at 5,000,000 listings each ingest chunk read `listing_versions` whole."""
    if url.startswith("sqlite"):
        return
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            analyze_if_grown(conn, created)
    finally:
        engine.dispose()
