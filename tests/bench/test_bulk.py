"""The bulk path of the search and sizes benches (bench.bulk): the very rows `registry import`
stores for the same generated listings, which the readers (index, transparency log, feeds)
then take as they take imported ones."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.checks import _listed_in_database
from bench.common import (
    BULK_DATASET,
    CAUGHT_UP,
    STEADY_STATE_READERS,
    _registry,
    build_or_reuse,
    bulk_listings,
    drop_postgres_databases,
    fresh_postgres_database,
    import_signed_listings,
)
from bench.search import _bulk_build, catch_up
from registry.db import create_sync_engine

# What a listing is, whichever path stored it (ids, times and ciphertexts differ by nature).
LISTING = (
    "SELECT court_code, province_code, case_number, debtor_kind, debtor_name, debtor_id_blind, "
    "debtor_id_masked, grounds, filed_on, listed_on, expires_on, status, version FROM listings"
)


def _scratch(tmp_path: Path, name: str) -> str:
    admin = os.environ.get("REGISTRY_TEST_DATABASE_URL")
    if admin is None:
        return f"sqlite:///{tmp_path / name}.db"
    return fresh_postgres_database(admin, name, prefix="bulk_test")


def _listings(url: str) -> list[tuple[Any, ...]]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(tuple(str(value) for value in row) for row in conn.execute(sa.text(LISTING)))
    finally:
        engine.dispose()


def test_bulk_path_stores_what_import_stores_and_the_readers_take_it(tmp_path: Path) -> None:
    bulk_root, import_root = tmp_path / "bulk", tmp_path / "import"
    bulk_root.mkdir()
    import_root.mkdir()
    bulk_url, import_url = _scratch(tmp_path, "bulk"), _scratch(tmp_path, "imported")
    try:
        env, built = bulk_listings(bulk_root, bulk_url, 240, on_top=40)
        assert built["bulk"]["created"] == 200
        assert built["import_on_top"]["created"] == 40
        assert "not an ingest figure" in built["bulk"]["path"]
        # The same 200 listings (seed 7, one slice per worker) through `registry import`; the
        # demo courts' keys are the bulk database's, so blind indexes match too.
        for name in ("secrets.json", "signing-keys.json", "demo-keys.json"):
            (import_root / name).write_bytes((bulk_root / name).read_bytes())
        import_signed_listings(import_root, import_url, 200)
        bulk_rows, imported_rows = _listings(bulk_url), _listings(import_url)
        assert len(bulk_rows) == 240
        assert set(imported_rows) <= set(bulk_rows)

        for command in (("search", "reindex"), ("log", "checkpoint"), ("feeds", "sync"), ("db", "check")):
            _registry(*command, env=env)
        found = json.loads(
            _registry("search", "reconcile", "--deep", env=env).stdout.strip().splitlines()[-1]
        )
        assert (found["checked"], found["missing"], found["stale"], found["extra"]) == (240, 0, 0, 0)
    finally:
        admin = os.environ.get("REGISTRY_TEST_DATABASE_URL")
        if admin is not None:
            drop_postgres_databases(admin, [bulk_url.rsplit("/", 1)[1], import_url.rsplit("/", 1)[1]])


def test_a_kept_bulk_list_is_prepared_once_and_every_copy_starts_at_the_head(tmp_path: Path) -> None:
    """At millions of listings the reindex and the readers' catch-up take longer than the
    benches that follow: they run once, on what is kept, and every copy (the search and the
    checks benches') starts with each reader at the log's head, the listed subjects the
    checks bench asks for read back from the list itself."""
    dataset = tmp_path / "dataset"
    prepared_runs: list[str] = []

    def prepare(root: Path, url: str, env: dict[str, str]) -> dict[str, Any]:
        prepared_runs.append(url)
        return catch_up(root, url, env)

    admin = os.environ.get("REGISTRY_TEST_DATABASE_URL")
    copies: list[str] = []
    try:
        for run in ("first", "second"):
            root = tmp_path / run
            root.mkdir()
            url = _scratch(root, "bench") if admin else f"sqlite:///{root / 'bench.db'}"
            copies.append(url)
            _, built = build_or_reuse(root, url, 60, dataset, BULK_DATASET, _bulk_build(10), prepare)
            assert built["prepared"]["reindex"]["documents"] == 60
            engine = create_sync_engine(url, writer=False)
            try:
                with engine.connect() as conn:
                    behind = {
                        name: conn.execute(sa.text(CAUGHT_UP), {"cursor": name}).scalar()
                        for name in STEADY_STATE_READERS
                    }
                    documents = conn.execute(sa.text("SELECT count(*) FROM search_docs")).scalar()
                    persons = conn.execute(
                        sa.text("SELECT count(*) FROM listings WHERE debtor_kind = 'person'")
                    ).scalar()
                    # Counted in SQL by `registry statistics rebuild`, not by replaying the log.
                    counted = conn.execute(
                        sa.text("SELECT sum(listed) FROM statistics_counts WHERE grain = 'pt'")
                    ).scalar()
            finally:
                engine.dispose()
            assert behind == dict.fromkeys(STEADY_STATE_READERS, 0)
            assert documents == 60
            assert counted == 60
            assert "statistics rebuild" in built["prepared"]["catch_up_seconds"]
            listed = _listed_in_database(url, root / "secrets.json", 100, seed=3)
            assert len(listed) == persons
            assert all(len(subject["id_number"]) == 18 and subject["name"] for subject in listed)
        assert len(prepared_runs) == 1
        assert built["reused_from"] == str(dataset / f"{BULK_DATASET}-60")
    finally:
        if admin is not None:
            kept = json.loads((dataset / f"{BULK_DATASET}-60" / "build.json").read_text())["kept_database"]
            drop_postgres_databases(admin, [url.rsplit("/", 1)[1] for url in copies] + [kept])
