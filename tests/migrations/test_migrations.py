"""Data migrations on a database that already holds data, on the engine under test.

Each test migrates its own scratch database (a file on SQLite, a fresh database on the
PostgreSQL server under test) to the revision before, writes rows as that revision's code
did, and upgrades.
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from bench.common import drop_postgres_databases, fresh_postgres_database
from publishing.statistics.models import COUNT_COLUMNS, STATISTICS_COUNTS
from publishing.statistics.reader import Fact, Key, _add
from registry.db import create_sync_engine
from registry.identity.crypto import BlindIndex, DataKeyError, DataKeyring, SecretsFile
from registry.identity.types import index_input
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.listings.schemas import GROUNDS, REMOVAL_REASONS
from registry.settings import DatabaseSettings
from search.embedded import FACET_KEY, facet_key, fts_match, province_character_term, province_term, ts_terms
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
        command.upgrade(config, "0010")
        with engine.connect() as conn:
            versions = dict(conn.execute(sa.text("SELECT listing_id, version FROM search_docs")).all())
        assert versions == {"L3": 0, "L7": 1, "L8": 0}
    finally:
        engine.dispose()


# ---- 0011: identity types, type-bound indexes, masks, no birth dates in clear ----

PERSON_NUMBER = "11010519491231002X"
ORG_CODE = "91110000600037341L"
UNLISTED_PERSON_BLIND_INPUT = "110101198001010019"


def _old_mask(number: str) -> str:
    return number[:10] + "****" + number[14:]


def _write_listings_as_0010_did(engine: sa.Engine, keyring: DataKeyring, blind: BlindIndex) -> None:
    now = "2026-11-20 08:00:00"
    listings = [
        ("LP", "person", "张伟", PERSON_NUMBER, "F", "1949-12-31", None),
        ("LO", "organization", "恒信达科技有限公司", ORG_CODE, None, None, "王建国"),
    ]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO courts (code, name, created_at) VALUES ('京0105', '北京市朝阳区人民法院', :t)"
            ),
            {"t": now},
        )
        for listing_id, kind, name, number, sex, birth, legal in listings:
            conn.execute(
                sa.text(
                    "INSERT INTO listings (id, court_code, province_code, case_number, status, version, "
                    "debtor_kind, debtor_name, debtor_id_blind, debtor_id_cipher, debtor_id_masked, "
                    "debtor_sex, debtor_birth_date, legal_representative, grounds, filed_on, listed_on, "
                    "details, published_seq, published_at, updated_at) VALUES (:id, '京0105', '11', "
                    "'（2026）京0105执1号', 'active', 1, :kind, :name, :blind, :cipher, :masked, :sex, "
                    ":birth, :legal, '[\"evades_enforcement\"]', '2026-01-05', '2026-11-20', '{}', 1, :t, :t)"
                ),
                {
                    "id": listing_id, "kind": kind, "name": name, "blind": blind(number),
                    "cipher": keyring.encrypt(number.encode(), PURPOSE_DEBTOR_ID),
                    "masked": _old_mask(number),
                    "sex": sex, "birth": birth, "legal": legal, "t": now,
                },
            )  # fmt: skip
            entry = {
                "id": listing_id, "kind": kind, "name": name, "sex": sex, "age": 76 if sex else None,
                "identifier_masked": _old_mask(number), "legal_representative": legal,
                "court_code": "京0105", "published_on": "2026-11-20",
            }  # fmt: skip
            conn.execute(
                sa.text(
                    "INSERT INTO search_docs (id, listing_id, version, kind, province_code, court_code, "
                    "ground_mask, published_on, birth_date, terms, pinyin, entry) VALUES (:id, :listing, 1, "
                    ":kind, '11', '京0105', 4, '2026-11-20', :birth, '', '', :entry)"
                    if engine.dialect.name == "sqlite"
                    else "INSERT INTO search_docs (id, listing_id, version, kind, province_code, court_code, "
                    "ground_mask, published_on, birth_date, terms, pinyin, entry) VALUES (:id, :listing, 1, "
                    ":kind, '11', '京0105', 4, '2026-11-20', :birth, ''::tsvector, ''::tsvector, :entry)"
                ),
                {"id": 1 if kind == "person" else 2, "listing": listing_id, "kind": kind, "birth": birth,
                 "entry": json.dumps(entry, ensure_ascii=False).encode()},
            )  # fmt: skip
        for subject in (blind(PERSON_NUMBER), blind(ORG_CODE), blind(UNLISTED_PERSON_BLIND_INPUT)):
            conn.execute(
                sa.text(
                    "INSERT INTO watch_subjects (client_id, subject_blind, created_at) "
                    "VALUES ('bank', :b, :t)"
                ),
                {"b": subject, "t": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO check_log (check_id, client_id, checked_at, purpose, reference, "
                    "subject_index, subject_blind, result, listings, name_mismatch) VALUES "
                    "('ck', 'bank', :t, 'loan_application', 'r', 0, :b, 'listed', 1, :f)"
                ),
                {"b": subject, "t": now, "f": False},
            )


def test_0011_types_every_identifier_binds_it_into_organisations_indexes_and_keeps_no_birth_date(
    scratch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_file = tmp_path / "secrets.json"
    data_key, blind_key = os.urandom(32), os.urandom(32)
    SecretsFile(secrets_file).save({"dk-1": data_key}, "dk-1", blind_key)
    monkeypatch.setenv("REGISTRY_SECRETS_FILE", str(secrets_file))
    monkeypatch.delenv("REGISTRY_DATA_KEYS", raising=False)
    keyring, blind = DataKeyring({"dk-1": data_key}, "dk-1"), BlindIndex(blind_key)
    config = alembic_config(scratch_url)
    command.upgrade(config, "0010")
    engine = create_sync_engine(scratch_url)
    try:
        _write_listings_as_0010_did(engine, keyring, blind)
        command.upgrade(config, "head")
        inspector = sa.inspect(engine)
        assert "debtor_birth_date" not in {c["name"] for c in inspector.get_columns("listings")}
        assert "birth_date" not in {c["name"] for c in inspector.get_columns("search_docs")}
        with engine.connect() as conn:
            rows = {
                row.id: row
                for row in conn.execute(
                    sa.text(
                        "SELECT id, debtor_id_type, debtor_id_blind, debtor_id_masked, debtor_birth_year "
                        "FROM listings"
                    )
                )
            }
            watched = {
                bytes(b) for b in conn.execute(sa.text("SELECT subject_blind FROM watch_subjects")).scalars()
            }
            logged = {
                bytes(b) for b in conn.execute(sa.text("SELECT subject_blind FROM check_log")).scalars()
            }
            entries = {
                row.listing_id: json.loads(bytes(row.entry))
                for row in conn.execute(sa.text("SELECT listing_id, entry FROM search_docs"))
            }
        person, org = rows["LP"], rows["LO"]
        assert (person.debtor_id_type, org.debtor_id_type) == ("resident_id", "credit_code")
        # Persons' indexes are unchanged (bare number); organisations' bind their type.
        assert bytes(person.debtor_id_blind) == blind(index_input("resident_id", PERSON_NUMBER))
        assert bytes(org.debtor_id_blind) == blind(index_input("credit_code", ORG_CODE)) != blind(ORG_CODE)
        assert person.debtor_id_masked == "11****1949********" and person.debtor_birth_year == 1949
        assert org.debtor_id_masked == ORG_CODE and org.debtor_birth_year is None
        # The check log and watchlist follow the listed organisation; persons' stay.
        expected = {
            blind(PERSON_NUMBER),
            blind(index_input("credit_code", ORG_CODE)),
            blind(UNLISTED_PERSON_BLIND_INPUT),
        }
        assert watched == logged == expected
        assert entries["LP"]["identifier_masked"] == "11****1949********"
        assert entries["LP"]["age_at_publication"] == 2026 - 1949 and "age" not in entries["LP"]
        assert entries["LP"]["id_type"] == "resident_id"
        assert entries["LO"]["identifier_masked"] == ORG_CODE and entries["LO"]["id_type"] == "credit_code"
        assert entries["LO"]["age_at_publication"] is None
    finally:
        engine.dispose()


def test_0011_refuses_to_run_without_the_keys_rather_than_invent_them(
    scratch_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_key, blind_key = os.urandom(32), os.urandom(32)
    missing = tmp_path / "nowhere" / "secrets.json"
    monkeypatch.setenv("REGISTRY_SECRETS_FILE", str(missing))
    monkeypatch.delenv("REGISTRY_DATA_KEYS", raising=False)
    config = alembic_config(scratch_url)
    command.upgrade(config, "0010")
    engine = create_sync_engine(scratch_url)
    try:
        _write_listings_as_0010_did(engine, DataKeyring({"dk-1": data_key}, "dk-1"), BlindIndex(blind_key))
        with pytest.raises(DataKeyError):
            command.upgrade(config, "head")
        assert not missing.exists()
    finally:
        engine.dispose()


def test_0016_derives_the_year_and_not_special_rows_from_the_counts_kept(scratch_url: str) -> None:
    """After 0016 the counts are what the reader of the day keeps for the same listings: the
    year rows and the "not special" rows at the province's special grains derived in SQL."""
    rng = random.Random(16)
    courts = [("京0105", "11"), ("京0108", "11"), ("沪0115", "31")]
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0] * len(COUNT_COLUMNS))
    for _ in range(300):
        court, province = rng.choice(courts)
        listed = date(2024, 1, 1) + timedelta(days=rng.randint(0, 900))
        removed = listed + timedelta(days=rng.randint(0, 400)) if rng.random() < 0.5 else None
        fact = Fact(
            court,
            province,
            rng.choice(["person", "organization"]),
            rng.choice(["", "", "", "civil_servant", "state_organ"]),
            listed,
            rng.choice(GROUNDS),
            removed,
            None if removed is None else rng.choice(REMOVAL_REASONS),
            None if removed is None else rng.random() < 0.8,
        )
        _add(deltas, fact, +1)
    now = {key: values for key, values in deltas.items() if any(values)}
    # What 0015's reader kept: no year rows, no "not special" rows at the special grains.
    before = {
        key: values
        for key, values in now.items()
        if key[0][1] != "y" and not (key[0][0] == "q" and key[4] == "")
    }
    assert len(before) < len(now)
    config = alembic_config(scratch_url)
    command.upgrade(config, "0015")
    engine = create_sync_engine(scratch_url)
    names = ("grain", "period_start", "area", "debtor_kind", "special_subject", "province_code")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(STATISTICS_COUNTS),
                [
                    {**dict(zip(names, key, strict=True)), **dict(zip(COUNT_COLUMNS, v, strict=True))}
                    for key, v in before.items()
                ],
            )

        command.upgrade(config, "head")

        with engine.connect() as conn:
            got = {
                tuple(getattr(row, name) for name in names): [getattr(row, c) for c in COUNT_COLUMNS]
                for row in conn.execute(sa.select(STATISTICS_COUNTS))
            }
        assert got == now

        command.downgrade(config, "0015")
        with engine.connect() as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(STATISTICS_COUNTS)).scalar()
        assert left == len(before)
    finally:
        engine.dispose()


def test_0018_leaves_room_on_the_counts_pages_on_postgresql_and_keeps_every_count(scratch_url: str) -> None:
    config = alembic_config(scratch_url)
    before = ScriptDirectory.from_config(config).get_revision("0018").down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    engine = create_sync_engine(scratch_url)
    key = {
        "grain": "cm",
        "area": "京0105",
        "debtor_kind": "person",
        "special_subject": "",
        "province_code": "11",
    }
    rows = [{**key, "period_start": date(2025, month, 1), "listed": month} for month in range(1, 13)]
    fillfactor = sa.text("SELECT reloptions FROM pg_class WHERE relname = 'statistics_counts'")
    counts = sa.select(STATISTICS_COUNTS.c.period_start, STATISTICS_COUNTS.c.listed).order_by("period_start")
    expected = [(row["period_start"], row["listed"]) for row in rows]
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(STATISTICS_COUNTS), rows)

        command.upgrade(config, "0018")
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(counts)] == expected
            if engine.dialect.name == "postgresql":
                assert conn.execute(fillfactor).scalar_one() == ["fillfactor=70"]

        command.downgrade(config, before)
        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(counts)] == expected
            if engine.dialect.name == "postgresql":
                assert conn.execute(fillfactor).scalar_one() is None
    finally:
        engine.dispose()


def test_0026_gives_existing_documents_their_characters_in_their_province_on_postgresql(
    scratch_url: str,
) -> None:
    config = alembic_config(scratch_url)
    command.upgrade(config, "0022")
    engine = create_sync_engine(scratch_url)
    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("the qualified characters are PostgreSQL's; SQLite reads the province off the rowid")
        names = {"L1": ("张伟", "11"), "L2": ("王芳", "31"), "L3": ("张明", None)}
        # As 0022's code wrote them: the name terms and the province's term, nothing more.
        as_0022 = {
            listing: ts_terms(name_terms(name)) + (f" '{province_term(province)}'" if province else "")
            for listing, (name, province) in names.items()
        }
        with engine.begin() as conn:
            for serial, (listing, (_name, province)) in enumerate(names.items(), start=1):
                conn.execute(
                    sa.text(
                        "INSERT INTO search_docs (id, listing_id, version, kind, province_code, court_code, "
                        "ground_mask, published_on, terms, pinyin, entry) VALUES (:id, :listing, 1, "
                        "'person', :province, '京0105', 1, '2026-11-01', CAST(:terms AS tsvector), '', "
                        ":entry)"
                    ),
                    {
                        "id": serial << 14 | facet_key("person", province, 1),
                        "listing": listing,
                        "province": province,
                        "terms": as_0022[listing],
                        "entry": b"{}",
                    },
                )
        command.upgrade(config, "head")

        def found(term: str) -> list[str]:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text(
                            "SELECT listing_id FROM search_docs WHERE terms @@ CAST(:q AS tsquery) ORDER BY 1"
                        ),
                        {"q": f"'{term}'"},
                    ).scalars()
                )

        def stored_and_rendered(listing: str, terms: str) -> tuple[str, str]:
            with engine.connect() as conn:
                stored = conn.execute(
                    sa.text("SELECT terms FROM search_docs WHERE listing_id = :id"), {"id": listing}
                ).scalar_one()
                rendered = conn.execute(
                    sa.text("SELECT CAST(:terms AS tsvector)"), {"terms": terms}
                ).scalar_one()
            return stored, rendered

        assert found(province_character_term("11", "张")) == ["L1"]
        assert found(province_character_term("11", "伟")) == ["L1"]
        assert found(province_character_term("31", "王")) == ["L2"]
        assert found(province_character_term("11", "王")) == []
        assert found("张") == ["L1", "L3"]
        # Exactly the terms a document written now carries (the deep reconcile compares them).
        for listing, (name, province) in names.items():
            stored, rendered = stored_and_rendered(listing, ts_terms(name_terms(name), province))
            assert stored == rendered

        command.downgrade(config, "0022")
        assert found(province_character_term("11", "张")) == []
        for listing in names:
            stored, rendered = stored_and_rendered(listing, as_0022[listing])
            assert stored == rendered
    finally:
        engine.dispose()
