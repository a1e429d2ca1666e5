"""Data migrations on a database that already holds data, on the engine under test.

Each test migrates its own scratch database (a file on SQLite, a fresh database on the
PostgreSQL server under test) to the revision before, writes rows as that revision's code
did, and upgrades.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from bench.common import drop_postgres_databases, fresh_postgres_database
from registry.db import create_sync_engine
from registry.settings import DatabaseSettings
from search.embedded import FACET_KEY, facet_key, fts_match, province_term, ts_terms
from search.text import name_terms, text_match
from service.cli import alembic_config


@pytest.fixture
def scratch_url(tmp_path: Path) -> Iterator[str]:
    server = os.environ.get("REGISTRY_TEST_DATABASE_URL")
    if server is None or not server.startswith("postgresql"):
        yield DatabaseSettings(url=f"sqlite:///{tmp_path / 'migrate.db'}").url
        return
    url = fresh_postgres_database(server, "migrate", prefix="registry_test")
    try:
        yield DatabaseSettings(url=url).url
    finally:
        drop_postgres_databases(server, [url.rsplit("/", 1)[1]])


# (id before, kind, province, grounds mask, name): ids as 0006 left them, gaps included.
DOCUMENTS = [
    (3, "person", "11", 0b000001, "张伟"),
    (7, "organization", "31", 0b100010, "恒信达科技有限公司"),
    (8, "person", None, 0b010100, "张伟明"),
]


def _write_documents_as_0006_did(engine: sa.Engine) -> None:
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        for old_id, kind, province, mask, name in DOCUMENTS:
            terms = name_terms(name)
            conn.execute(
                sa.text(
                    "INSERT INTO search_docs (id, listing_id, version, kind, province_code, "
                    "court_code, ground_mask, published_on, birth_date, terms, pinyin, entry) VALUES "
                    "(:id, :listing, 1, :kind, :province, '京0105', :mask, '2026-11-01', NULL, "
                    + (":terms, '', :entry)" if sqlite else "CAST(:terms AS tsvector), '', :entry)")
                ),
                {
                    "id": old_id,
                    "listing": f"L{old_id}",
                    "kind": kind,
                    "province": province,
                    "mask": mask,
                    "terms": " ".join(terms) if sqlite else ts_terms(terms),
                    "entry": b"{}",
                },
            )
        if sqlite:
            conn.execute(sa.text("INSERT INTO search_fts(search_fts) VALUES ('rebuild')"))


def test_0007_gives_existing_documents_ids_that_carry_their_facet_key(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, "0006")
    engine = create_sync_engine(scratch_url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        _write_documents_as_0006_did(engine)

        command.upgrade(config, "head")

        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT listing_id, id FROM search_docs ORDER BY id")).all()
            expected = [
                (f"L{old_id}", old_id << 14 | facet_key(kind, province, mask))
                for old_id, kind, province, mask, _ in DOCUMENTS
            ]
            # Same order as before (newest highest), each id ending in its own facet key.
            assert [tuple(row) for row in rows] == expected
            assert [row.id & FACET_KEY for row in rows] == [
                facet_key(kind, province, mask) for _, kind, province, mask, _ in DOCUMENTS
            ]
            if sqlite:
                # FTS5 was rebuilt over the new ids: a name query finds the renumbered rows.
                match = text_match("张伟")
                assert match is not None
                found = conn.execute(
                    sa.text("SELECT rowid FROM search_fts WHERE search_fts MATCH :q ORDER BY rowid"),
                    {"q": fts_match(match)},
                ).scalars()
                assert list(found) == [expected[0][1], expected[2][1]]
    finally:
        engine.dispose()


def test_0008_gives_existing_documents_their_province_term_on_postgresql(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, "0006")
    engine = create_sync_engine(scratch_url)
    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("the province term is PostgreSQL's; SQLite reads the province off the rowid")
        _write_documents_as_0006_did(engine)
        command.upgrade(config, "head")

        def listings_in(province: str) -> list[str]:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text(
                            "SELECT listing_id FROM search_docs WHERE terms @@ CAST(:term AS tsquery) "
                            "ORDER BY listing_id"
                        ),
                        {"term": f"'{province_term(province)}'"},
                    ).scalars()
                )

        # The term is there for documents with a province, beside their name terms, and
        # matches what a document written now carries.
        assert listings_in("11") == ["L3"]
        assert listings_in("31") == ["L7"]
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT terms FROM search_docs WHERE listing_id = 'L3'")).scalar()
            written_now = conn.execute(
                sa.text("SELECT CAST(:terms AS tsvector)"), {"terms": ts_terms(name_terms("张伟"), "11")}
            ).scalar()
        assert stored == written_now

        command.downgrade(config, "0007")
        assert listings_in("11") == []
        with engine.connect() as conn:
            phrase = conn.execute(
                sa.text("SELECT listing_id FROM search_docs WHERE terms @@ CAST(:q AS tsquery) ORDER BY 1"),
                {"q": "'张伟'"},
            ).scalars()
            assert list(phrase) == ["L3", "L8"]
    finally:
        engine.dispose()


def test_0010_marks_every_persons_document_for_the_reconcile_to_rewrite(scratch_url: str) -> None:
    """Pinyin terms now hold every reading of a given name: the persons' documents are made
    stale (version 0, which no listing has), so the reconcile rewrites them; organisations,
    which have no pinyin, are left as they are."""
    config = alembic_config(scratch_url)
    command.upgrade(config, "0006")
    engine = create_sync_engine(scratch_url)
    try:
        _write_documents_as_0006_did(engine)
        command.upgrade(config, "head")
        with engine.connect() as conn:
            versions = dict(conn.execute(sa.text("SELECT listing_id, version FROM search_docs")).all())
        assert versions == {"L3": 0, "L7": 1, "L8": 0}
    finally:
        engine.dispose()
