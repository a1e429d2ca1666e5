"""Data and blind-index keys are checked where they are loaded (an operator's acceptance
audit): a data key's id is printable ASCII, 1 to 64 characters, without `:` or `,`; a data key
is an AES-256 key (exactly 32 bytes); a blind-index key has at least 32 bytes. Anything else
is a key error: every command stops with one `Error:` line (before, a non-ASCII id was
stored and broke `registry audit verify` with a traceback, a 300-character id or a key of the
wrong length was a traceback, a 16-byte key was taken), and a running service keeps the keys
it loaded when its secrets file gets such a key (before, every request answered 500)."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from registry.identity.crypto import DataKeyError, DataKeyring, SecretsFile, SecretsSource, load_secrets
from registry.identity.errors import KeyConfigError
from registry.settings import Settings
from tests.support.checks import bank, publish_person
from tests.support.harness import CourtHandle, Registry, run_registry


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


BAD_IDS = [
    pytest.param("密钥", id="not-ascii"),
    pytest.param("dk-é", id="latin-1"),
    pytest.param("d" * 300, id="300-characters"),
    pytest.param("d" * 65, id="65-characters"),
    pytest.param("", id="empty"),
    pytest.param("dk:1", id="colon"),
    pytest.param("dk,1", id="comma"),
    pytest.param("dk\n1", id="newline"),
    pytest.param("dk\x00", id="nul"),
    pytest.param("dk\x7f", id="delete"),
]


# ---- the keyring ----


@pytest.mark.parametrize("kid", BAD_IDS)
def test_a_data_key_id_that_is_not_printable_ascii_up_to_64_characters_is_refused(kid: str) -> None:
    with pytest.raises(DataKeyError, match="data key id"):
        DataKeyring({kid: os.urandom(32)}, kid)
    # Also when it is not the active key.
    with pytest.raises(DataKeyError, match="data key id"):
        DataKeyring({"dk-1": os.urandom(32), kid: os.urandom(32)}, "dk-1")


@pytest.mark.parametrize("length", [0, 5, 16, 24, 31, 33, 64])
def test_a_data_key_is_exactly_32_bytes(length: int) -> None:
    with pytest.raises(DataKeyError, match="32 bytes"):
        DataKeyring({"dk-1": os.urandom(length)}, "dk-1")
    with pytest.raises(DataKeyError, match="32 bytes"):
        DataKeyring({"dk-1": os.urandom(32), "dk-2": os.urandom(length)}, "dk-1")


@pytest.mark.parametrize("kid", ["dk-2026a", "k" * 64, "A.b_c-d~!", "key one"])
def test_a_valid_id_keeps_the_ciphertext_header_stored_data_has(kid: str) -> None:
    """Format byte, the id's length, the id: as written before, so stored data decrypts."""
    key = os.urandom(32)
    ring = DataKeyring({kid: key}, kid)
    blob = ring.encrypt(b"11010519491231002X", b"p")
    assert blob[: 2 + len(kid)] == bytes([1, len(kid)]) + kid.encode()
    assert DataKeyring.key_id_of(blob) == kid
    assert ring.decrypt(blob, b"p") == b"11010519491231002X"
    nonce = os.urandom(12)
    stored = bytes([1, len(kid)]) + kid.encode() + nonce + AESGCM(key).encrypt(nonce, b"old", b"p")
    assert ring.decrypt(stored, b"p") == b"old"


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(bytes([1, 2]) + "密".encode() + os.urandom(40), id="header-of-a-non-ascii-id"),
        pytest.param(bytes([1, 10]) + b"dk", id="truncated"),
        pytest.param(bytes([1, 2]) + b"\xff\xfe" + os.urandom(40), id="not-ascii"),
    ],
)
def test_a_ciphertext_header_naming_no_valid_id_is_a_key_error(blob: bytes) -> None:
    with pytest.raises(DataKeyError):
        DataKeyring.key_id_of(blob)
    with pytest.raises(DataKeyError):
        DataKeyring({"dk-1": os.urandom(32)}, "dk-1").decrypt(blob, b"p")


# ---- where keys are loaded ----


def _environment(settings: Settings, data_keys: str, blind: str | None = None) -> Settings:
    return settings.override(
        keys={
            "data_keys": data_keys,
            "data_key_id": None,
            "blind_index_key": blind or _b64(os.urandom(32)),
        }
    )


ENVIRONMENT_CASES = [
    pytest.param(f"密钥:{_b64(os.urandom(32))}", None, "REGISTRY_DATA_KEYS", id="not-ascii-id"),
    pytest.param(f"{'d' * 300}:{_b64(os.urandom(32))}", None, "REGISTRY_DATA_KEYS", id="300-character-id"),
    pytest.param("dk-x:c2hvcnQ=", None, "REGISTRY_DATA_KEYS", id="5-byte-key"),
    pytest.param(f"dk-x:{_b64(os.urandom(16))}", None, "REGISTRY_DATA_KEYS", id="16-byte-key"),
    pytest.param(
        f"dk-x:{_b64(os.urandom(32))}",
        _b64(os.urandom(16)),
        "REGISTRY_BLIND_INDEX_KEY",
        id="16-byte-blind-key",
    ),
    pytest.param(
        f"dk-x:{_b64(os.urandom(32))}",
        f"{_b64(os.urandom(32))},{_b64(b'')}",
        "REGISTRY_BLIND_INDEX_KEY",
        id="empty-retiring-blind-key",
    ),
]


@pytest.mark.parametrize(("data_keys", "blind", "needle"), ENVIRONMENT_CASES)
def test_a_bad_key_in_the_environment_is_a_key_configuration_error(
    settings: Settings, data_keys: str, blind: str | None, needle: str
) -> None:
    with pytest.raises(KeyConfigError, match=needle):
        load_secrets(_environment(settings, data_keys, blind))


def _secrets_body(keys: dict[str, bytes], active: str, blind: bytes) -> str:
    return json.dumps(
        {
            "data_keys": {kid: _b64(key) for kid, key in keys.items()},
            "active_data_key_id": active,
            "blind_index_key": _b64(blind),
        }
    )


FILE_CASES = [
    pytest.param({"密钥": os.urandom(32)}, "密钥", os.urandom(32), id="not-ascii-id"),
    pytest.param({"dk-1": os.urandom(32), "dk-2": b"short"}, "dk-1", os.urandom(32), id="5-byte-key"),
    pytest.param({"dk-1": os.urandom(16)}, "dk-1", os.urandom(32), id="16-byte-key"),
    pytest.param({"dk-1": os.urandom(32)}, "dk-1", os.urandom(8), id="8-byte-blind-key"),
]


@pytest.mark.parametrize(("keys", "active", "blind"), FILE_CASES)
def test_a_bad_key_in_the_secrets_file_is_a_key_configuration_error(
    settings: Settings, tmp_path: Path, keys: dict[str, bytes], active: str, blind: bytes
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(_secrets_body(keys, active, blind))
    with pytest.raises(KeyConfigError, match=str(path)):
        load_secrets(settings.override(keys={"secrets_file": path}))


@pytest.mark.parametrize(("keys", "active", "blind"), FILE_CASES)
def test_a_running_source_keeps_its_keys_when_its_file_gets_a_bad_key(
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    keys: dict[str, bytes],
    active: str,
    blind: bytes,
) -> None:
    path = tmp_path / "secrets.json"
    assert SecretsFile(path).create({"dk-1": os.urandom(32)}, "dk-1", os.urandom(32))
    source = SecretsSource(settings.override(keys={"secrets_file": path}))
    loaded = source.current()
    path.write_text(_secrets_body(keys, active, blind))
    later = path.stat().st_mtime + 5
    os.utime(path, (later, later))
    with caplog.at_level(logging.ERROR, logger="registry.identity.crypto"):
        for _ in range(3):
            assert source.current() is loaded
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "keeping the keys already loaded" in errors[0].getMessage()


# ---- an operator's commands and a running service ----


@pytest.mark.slow
@pytest.mark.parametrize(("data_keys", "blind", "needle"), ENVIRONMENT_CASES[:5])
def test_every_command_refuses_a_bad_key_in_one_line(
    settings: Settings, engine: sa.Engine, data_keys: str, blind: str | None, needle: str
) -> None:
    """A fresh database, as the audit ran it: `demo` stored listings under a non-ASCII id and
    `keys check` said OK, then `audit verify` died; the other keys were tracebacks."""
    env = {"REGISTRY_DATA_KEYS": data_keys, "REGISTRY_BLIND_INDEX_KEY": blind or _b64(os.urandom(32))}
    for command in (("demo", "--listings", "1"), ("keys", "check"), ("audit", "verify")):
        result = run_registry(settings, *command, **env)
        assert result.returncode != 0, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and needle in errors[0], (command, result.stderr)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one() == 0


@pytest.fixture
def saved_secrets(settings: Settings, registry: Registry) -> Iterator[Path]:
    path = Path(settings.keys.secrets_file)
    saved = path.read_bytes()
    try:
        yield path
    finally:
        path.write_bytes(saved)
        later = path.stat().st_mtime + 20
        os.utime(path, (later, later))


@pytest.mark.slow
def test_a_running_service_keeps_serving_when_its_secrets_file_gets_a_bad_key(
    registry: Registry, court: CourtHandle, settings: Settings, saved_secrets: Path
) -> None:
    _, body = publish_person(registry, court)
    _, http = bank(registry)
    request = {
        "purpose": "loan_application",
        "reference": "LA-1",
        "subjects": [{"id_number": body["debtor"]["id_number"]}],
    }
    try:
        assert http.post("/v1/checks", json=request).json()["results"][0]["listed"]
        stored = json.loads(saved_secrets.read_text())
        for bad_kid, bad_key in (("dk-short", b"short"), ("密钥", os.urandom(32))):
            saved_secrets.write_text(
                json.dumps(stored | {"data_keys": stored["data_keys"] | {bad_kid: _b64(bad_key)}})
            )
            later = saved_secrets.stat().st_mtime + 10
            os.utime(saved_secrets, (later, later))
            response = http.post("/v1/checks", json=request)
            assert response.status_code == 200, response.text
            assert response.json()["results"][0]["listed"]
    finally:
        http.close()
