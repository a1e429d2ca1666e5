"""Fail closed on keys (issue 15 #8): keys are generated for an empty database only; a
service that lacks a key the stored data needs refuses to start and names it, and
`registry keys check` says the same."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from registry.db import create_sync_engine
from registry.identity.crypto import DataKeyring, generate_missing_key_files, load_secrets
from registry.identity.errors import KeyConfigError, KeysUnavailable
from registry.identity.keystore import blind_index_key_id, check_reloaded, ensure_keys
from registry.identity.registry_key import load_registry_signer
from registry.listings.prepare import PURPOSE_DEBTOR_ID
from registry.runtime import Services
from registry.settings import Settings
from tests.support.checks import bank, publish_person
from tests.support.harness import CourtHandle, Registry, run_registry


def _ids(settings: Settings) -> tuple[str, str, str]:
    secrets = load_secrets(settings)
    return (
        secrets.keyring.active_key_id,
        blind_index_key_id(secrets.blind_index_key),
        load_registry_signer(settings).key_id,
    )


def test_a_missing_secrets_file_stops_the_service_naming_the_keys_it_lacks(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    publish_person(registry, court)
    ensure_keys(settings, engine)  # records the ids of the keys the data is under
    data_id, blind_id, signing_id = _ids(settings)
    with engine.connect() as conn:
        recorded = dict(conn.execute(sa.text("SELECT key_id, kind FROM registry_keys")).all())
    assert recorded == {data_id: "data", blind_id: "blind_index", signing_id: "signing"}

    wrong = settings.override(
        keys={"secrets_file": tmp_path / "typo.json", "signing_key_file": tmp_path / "typo-signing.json"}
    )
    with pytest.raises(KeysUnavailable) as refused:
        Services.create(wrong)
    message = str(refused.value)
    assert data_id in message and blind_id in message and signing_id in message
    # Nothing was invented at the wrong path.
    assert not (tmp_path / "typo.json").exists() and not (tmp_path / "typo-signing.json").exists()

    # Only the signing key missing: that one is named, the others are not.
    half = settings.override(keys={"signing_key_file": tmp_path / "typo-signing.json"})
    with pytest.raises(KeysUnavailable) as refused:
        ensure_keys(half, engine)
    assert refused.value.missing == [f"{signing_id} (signing)"]

    env = {"REGISTRY_SECRETS_FILE": str(tmp_path / "typo.json")}
    check = run_registry(settings, "keys", "check", **env)
    assert check.returncode != 0
    assert data_id in check.stderr and blind_id in check.stderr
    serve = run_registry(settings, "serve", "--port", "1", **env)
    assert serve.returncode != 0 and data_id in serve.stderr
    assert "listening" not in serve.stdout
    assert not (tmp_path / "typo.json").exists()

    ok = run_registry(settings, "keys", "check")
    assert ok.returncode == 0, ok.stderr
    assert "keys ok" in ok.stdout and data_id in ok.stdout


def test_a_different_blind_index_key_on_a_database_from_before_the_record_is_refused(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    """A database migrated from before registry_keys has no blind-index id on record: the
    key is checked against a stored index before it is adopted."""
    publish_person(registry, court)
    stored = json.loads(Path(settings.keys.secrets_file).read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(stored | {"blind_index_key": "A" * 43 + "="}))
    with pytest.raises(KeysUnavailable, match="blind-index key does not compute"):
        ensure_keys(settings.override(keys={"secrets_file": other}), engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM registry_keys")).scalar_one() == 0
    ensure_keys(settings, engine)  # the right key is adopted
    with engine.connect() as conn:
        kinds = sorted(conn.execute(sa.text("SELECT kind FROM registry_keys")).scalars())
    assert kinds == ["blind_index", "data", "signing"]


def test_unreadable_or_malformed_key_files_are_refused(
    registry: Registry, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "a-directory.json"
    folder.mkdir()
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    for path in (folder, garbage):
        with pytest.raises(KeyConfigError):
            ensure_keys(settings.override(keys={"secrets_file": path}), engine)
        with pytest.raises(KeyConfigError):
            ensure_keys(settings.override(keys={"signing_key_file": path}), engine)
    with pytest.raises(KeyConfigError):
        ensure_keys(
            settings.override(keys={"data_keys": "dk-1:not base64!", "blind_index_key": "AA=="}), engine
        )
    key = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(KeyConfigError, match="REGISTRY_DATA_KEY_ID"):
        ensure_keys(
            settings.override(
                keys={"data_keys": f"dk-1:{key}", "data_key_id": "dk-2", "blind_index_key": key}
            ),
            engine,
        )


@pytest.mark.parametrize(
    "alone",
    [
        {"blind_index_key": "key"},
        {"data_key_id": "dk-zzz"},
        {"data_key_id": "dk-zzz", "blind_index_key": "key"},
    ],
)
def test_a_key_setting_without_the_data_keys_is_refused_not_ignored(
    settings: Settings, engine: sa.Engine, alone: dict[str, str]
) -> None:
    """The secrets file's keys were used in its place, and `keys check` said OK: a process
    the operator meant to hold another blind-index key would answer from this one."""
    keys = {
        name: base64.b64encode(os.urandom(32)).decode() if value == "key" else value
        for name, value in alone.items()
    }
    configured = settings.override(keys=keys)
    with pytest.raises(KeyConfigError, match="without REGISTRY_DATA_KEYS"):
        load_secrets(configured)
    with pytest.raises(KeyConfigError, match="without REGISTRY_DATA_KEYS"):
        ensure_keys(configured, engine)
    env = {f"REGISTRY_{name.upper()}": value for name, value in keys.items()}
    checked = run_registry(configured, "keys", "check", **env)
    assert checked.returncode != 0
    assert [line for line in checked.stderr.splitlines() if line.startswith("Error:")] == [
        line for line in checked.stderr.splitlines() if line.strip()
    ], checked.stderr
    assert "without REGISTRY_DATA_KEYS" in checked.stderr


def test_an_unmigrated_database_is_named(settings: Settings, tmp_path: Path) -> None:
    bare = settings.override(
        database={"url": f"sqlite:///{tmp_path / 'bare.db'}"},
        keys={"secrets_file": tmp_path / "s.json", "signing_key_file": tmp_path / "g.json"},
    )
    with pytest.raises(KeyConfigError, match="registry db upgrade"):
        ensure_keys(bare)
    assert not (tmp_path / "s.json").exists() and not (tmp_path / "g.json").exists()


def test_keys_are_generated_for_an_empty_database_only(tmp_path: Path) -> None:
    from alembic import command

    from service.cli import alembic_config

    fresh = Settings().override(
        database={"url": f"sqlite:///{tmp_path / 'fresh.db'}"},
        keys={"secrets_file": tmp_path / "s.json", "signing_key_file": tmp_path / "g.json"},
    )
    command.upgrade(alembic_config(fresh.database.url), "head")
    engine = create_sync_engine(fresh.database.url)
    try:
        report = ensure_keys(fresh, engine)
        assert report.generated
        assert (tmp_path / "s.json").stat().st_mode & 0o077 == 0
        assert (tmp_path / "g.json").stat().st_mode & 0o077 == 0
        # Recorded: a later start with the files gone refuses instead of generating again.
        (tmp_path / "s.json").rename(tmp_path / "s.saved")
        with pytest.raises(KeysUnavailable):
            ensure_keys(fresh, engine)
        assert not (tmp_path / "s.json").exists()
        (tmp_path / "s.saved").rename(tmp_path / "s.json")
        assert not ensure_keys(fresh, engine).generated
    finally:
        engine.dispose()


@pytest.fixture
def saved_secrets(settings: Settings, registry: Registry) -> Iterator[Path]:
    """Rotation rewrites the secrets file; put it back so later tests see the server's keys."""
    path = Path(settings.keys.secrets_file)
    saved = path.read_bytes()
    try:
        yield path
    finally:
        path.write_bytes(saved)


def test_a_data_key_is_retired_only_once_nothing_is_encrypted_under_it(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, saved_secrets: Path
) -> None:
    publish_person(registry, court)
    old = json.loads(saved_secrets.read_text())["active_data_key_id"]

    refused = run_registry(settings, "keys", "retire", old)
    assert refused.returncode != 0 and "active data key" in refused.stderr

    # A new active key, as an operator sets one before re-encrypting: the old one still holds data.
    stored = json.loads(saved_secrets.read_text())
    stored["data_keys"]["dk-next"] = base64.b64encode(os.urandom(32)).decode()
    stored["active_data_key_id"] = "dk-next"
    saved_secrets.write_text(json.dumps(stored))
    refused = run_registry(settings, "keys", "retire", old)
    assert refused.returncode != 0
    assert "still encrypted under" in refused.stderr and "listings.debtor_id_cipher: 1" in refused.stderr
    assert old in json.loads(saved_secrets.read_text())["data_keys"]

    rotated = run_registry(settings, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    retired = run_registry(settings, "keys", "retire", old)
    assert retired.returncode == 0, retired.stderr
    assert old not in json.loads(saved_secrets.read_text())["data_keys"]
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT retired_at FROM registry_keys WHERE key_id = :k"), {"k": old}
        ).one()
    assert row.retired_at is not None
    # The service starts without it, and still reads every listing.
    checked = run_registry(settings, "keys", "check")
    assert checked.returncode == 0, checked.stderr
    assert old not in checked.stdout
    assert "audit ok" in run_registry(settings, "audit", "verify").stdout


def test_a_running_service_keeps_its_keys_when_another_environments_file_replaces_them(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    """The file is re-read when it changes (a rotation is followed without a restart), but a
    valid file without the keys the stored data needs is not taken: the bank check must not
    answer `listed: false`, signed, for a listed person."""
    _, body = publish_person(registry, court)
    ensure_keys(settings, engine)
    path = Path(settings.keys.secrets_file)
    saved = path.read_bytes()
    other = settings.override(keys={"secrets_file": tmp_path / "other-environment.json"})
    generate_missing_key_files(other)
    _, http = bank(registry)
    request = {
        "purpose": "loan_application",
        "reference": "LA-1",
        "subjects": [{"id_number": body["debtor"]["id_number"]}],
    }

    def listed() -> bool:
        response = http.post("/v1/checks", json=request)
        assert response.status_code == 200, response.text
        return bool(response.json()["results"][0]["listed"])

    try:
        assert listed()
        path.write_bytes((tmp_path / "other-environment.json").read_bytes())
        later = path.stat().st_mtime + 5
        os.utime(path, (later, later))
        assert listed()
        # The service did not adopt the foreign keys for what it writes either.
        _, second = publish_person(registry, court)
        request["subjects"] = [{"id_number": second["debtor"]["id_number"]}]
        assert listed()
    finally:
        path.write_bytes(saved)
        http.close()


def _same_ids_other_bytes(settings: Settings, tmp_path: Path) -> Settings:
    """The secrets file with every data key's id kept and its bytes replaced."""
    stored = json.loads(Path(settings.keys.secrets_file).read_text())
    other = tmp_path / "same-ids.json"
    forged = {kid: base64.b64encode(os.urandom(32)).decode() for kid in stored["data_keys"]}
    other.write_text(json.dumps(stored | {"data_keys": forged}))
    return settings.override(keys={"secrets_file": other})


def test_other_bytes_under_a_recorded_data_key_id_are_refused(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    """A data key's id is a name the operator chose: the right name with the wrong bytes
    started, and what it encrypted could never be read with the real key again."""
    publish_person(registry, court)
    ensure_keys(settings, engine)
    with engine.connect() as conn:
        checks = (
            conn.execute(sa.text("SELECT check_value FROM registry_keys WHERE kind = 'data'")).scalars().all()
        )
    assert checks and all(checks)
    wrong = _same_ids_other_bytes(settings, tmp_path)
    with pytest.raises(KeysUnavailable, match="the id is right, the key is not"):
        ensure_keys(wrong, engine)
    check = run_registry(settings, "keys", "check", REGISTRY_SECRETS_FILE=str(wrong.keys.secrets_file))
    assert check.returncode != 0 and "the id is right, the key is not" in check.stderr
    assert run_registry(settings, "keys", "check").returncode == 0


def test_a_data_key_recorded_without_a_check_value_is_tried_on_the_stored_data(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    """A database from before check values were kept: a stored ciphertext must decrypt
    before the key is taken (and its check value recorded)."""
    publish_person(registry, court)
    ensure_keys(settings, engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE registry_keys SET check_value = NULL"))
    with pytest.raises(KeysUnavailable, match="the id is right, the key is not"):
        ensure_keys(_same_ids_other_bytes(settings, tmp_path), engine)
    ensure_keys(settings, engine)
    with engine.connect() as conn:
        checks = (
            conn.execute(sa.text("SELECT check_value FROM registry_keys WHERE kind = 'data'")).scalars().all()
        )
    assert checks and all(checks)


def test_a_running_service_does_not_take_other_bytes_under_its_data_key_id(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    publish_person(registry, court)
    ensure_keys(settings, engine)
    wrong = _same_ids_other_bytes(settings, tmp_path)
    with pytest.raises(KeysUnavailable, match="the id is right, the key is not"):
        check_reloaded(engine, load_secrets(wrong))
    check_reloaded(engine, load_secrets(settings))


def test_a_key_file_others_may_read_is_named_in_a_warning(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Loaded still (a restart must not fail on a copy's mode), but said: the keys may have leaked."""
    own = settings.override(
        keys={"secrets_file": tmp_path / "secrets.json", "signing_key_file": tmp_path / "signing.json"}
    )
    generate_missing_key_files(own)
    for path in (own.keys.secrets_file, own.keys.signing_key_file):
        path.chmod(0o644)
    with caplog.at_level("WARNING", logger="registry.identity.registry_key"):
        load_secrets(own)
        load_registry_signer(own)
        load_secrets(own)
    warned = [r.getMessage() for r in caplog.records if "chmod 600" in r.getMessage()]
    assert sorted(warned) == sorted(
        f"{p} is readable or writable by other users (mode 644): chmod 600 it"
        for p in (own.keys.secrets_file, own.keys.signing_key_file)
    )


def test_each_data_key_recorded_without_a_check_value_is_tried_on_its_own_data(
    registry: Registry, court: CourtHandle, settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    """Two keys recorded before check values were kept, each with data under it: wrong bytes
    under the second are refused even where the first key's data decrypts (one sample of the
    first proved nothing of the second, whose wrong bytes were then recorded as right)."""
    publish_person(registry, court)
    second, _ = publish_person(registry, court)
    stored = json.loads(Path(settings.keys.secrets_file).read_text())
    second_key = os.urandom(32)
    stored["data_keys"]["dk-second"] = base64.b64encode(second_key).decode()
    both = tmp_path / "both.json"
    both.write_text(json.dumps(stored))
    with_both = settings.override(keys={"secrets_file": both})
    with engine.begin() as conn:  # the second listing's identifier as if written under dk-second
        cipher = conn.execute(
            sa.text("SELECT debtor_id_cipher FROM listings WHERE id = :id"), {"id": second}
        ).scalar_one()
        plain = load_secrets(with_both).keyring.decrypt(bytes(cipher), PURPOSE_DEBTOR_ID)
        moved = DataKeyring({"dk-second": second_key}, "dk-second").encrypt(plain, PURPOSE_DEBTOR_ID)
        conn.execute(
            sa.text("UPDATE listings SET debtor_id_cipher = :c WHERE id = :id"), {"c": moved, "id": second}
        )
    ensure_keys(with_both, engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE registry_keys SET check_value = NULL"))
    forged = dict(
        stored,
        data_keys=dict(stored["data_keys"], **{"dk-second": base64.b64encode(os.urandom(32)).decode()}),
    )
    wrong_second = tmp_path / "wrong-second.json"
    wrong_second.write_text(json.dumps(forged))
    with pytest.raises(KeysUnavailable, match="dk-second: the configured bytes"):
        ensure_keys(settings.override(keys={"secrets_file": wrong_second}), engine)
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("SELECT count(*) FROM registry_keys WHERE check_value IS NOT NULL")
            ).scalar_one()
            == 0
        )
    ensure_keys(with_both, engine)  # the right bytes: proven on their own data, then kept
    with engine.connect() as conn:
        kept = dict(
            conn.execute(sa.text("SELECT key_id, check_value FROM registry_keys WHERE kind = 'data'")).all()
        )
    assert set(kept) == {"dk-second", stored["active_data_key_id"]} and all(kept.values())
