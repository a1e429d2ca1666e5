"""A running process (web or worker) follows the embedded set-up's signing-key file as it
follows the secrets file (an operator's acceptance audit: after `registry keys
rotate-signing` a running server kept publishing and signing with the old keys until a
restart). A changed file it cannot use (unreadable, gone, or without a key it already
publishes) is not taken: it keeps its keys and logs one error. A command signs with the
keys it loaded."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.identity.registry_key import (
    Domain,
    RegistrySigner,
    generate_signing_key_file,
    load_registry_signer,
    rotate_signing_key,
)
from registry.settings import Settings

BODY = b"registry.example/log\n3\n" + base64.b64encode(bytes(32)) + b"\ntime 2026-01-01T00:00:00Z\n"


def _touch(path: Path) -> None:
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))


def _follower(settings: Settings, tmp_path: Path) -> tuple[Path, RegistrySigner]:
    """A signer as a running process (web or worker) holds it: following its file."""
    path = tmp_path / "signing-keys.json"
    assert generate_signing_key_file(path)
    signer = load_registry_signer(settings.override(keys={"signing_key_file": path}))
    signer.follow()  # what the identity plugin's resource does at a process's start
    return path, signer


def test_a_command_signs_with_the_keys_it_loaded(settings: Settings, tmp_path: Path) -> None:
    """Not following (a command, from start to end): the keys read at load."""
    path = tmp_path / "signing-keys.json"
    assert generate_signing_key_file(path)
    signer = load_registry_signer(settings.override(keys={"signing_key_file": path}))
    old = signer.key_id
    rotate_signing_key(path)
    assert signer.key_id == old and list(signer.keys) == [old]


def test_a_rotation_between_load_and_follow_is_followed(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "signing-keys.json"
    assert generate_signing_key_file(path)
    signer = load_registry_signer(settings.override(keys={"signing_key_file": path}))
    new = rotate_signing_key(path)
    signer.follow()
    assert signer.key_id == new


def test_a_rotation_is_published_and_signed_with_at_once(settings: Settings, tmp_path: Path) -> None:
    path, signer = _follower(settings, tmp_path)
    old = signer.key_id
    new = rotate_signing_key(path)
    assert signer.key_id == new
    assert [key["kid"] for key in signer.jwks()["keys"]] == [new, old]
    assert set(signer.keys) == {new, old}
    signature = signer.sign(Domain.CHECKPOINT, BODY)
    assert signer.verify(Domain.CHECKPOINT, new, signature, BODY)
    assert not signer.verify(Domain.CHECKPOINT, old, signature, BODY)


def test_a_signature_is_made_with_the_key_whose_id_was_handed_out(settings: Settings, tmp_path: Path) -> None:
    """Callers read the key id, then sign (a receipt's header, a checkpoint's row): a rotation
    between the two must not label one key's signature with the other's id."""
    path, signer = _follower(settings, tmp_path)
    old = signer.key_id
    new = rotate_signing_key(path)
    assert signer.verify(Domain.CHECKPOINT, old, signer.sign(Domain.CHECKPOINT, BODY), BODY)
    assert signer.key_id == new
    assert signer.verify(Domain.CHECKPOINT, new, signer.sign(Domain.CHECKPOINT, BODY), BODY)
    # Without an id handed out first, the active key signs.
    assert signer.verify(Domain.CHECKPOINT, new, signer.sign(Domain.CHECKPOINT, BODY), BODY)


def _garbage(path: Path) -> None:
    path.write_text("{not json")


def _no_key(path: Path) -> None:
    path.write_text(json.dumps({"keys": []}))


def _foreign(path: Path) -> None:
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    path.write_text(json.dumps({"keys": [base64.b64encode(raw).decode()]}))


def _drops_the_old_key(path: Path) -> None:
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({"keys": stored["keys"][:1]}))


@pytest.mark.parametrize("spoil", [_garbage, _no_key, _foreign, _drops_the_old_key])
def test_a_changed_file_that_cannot_be_used_is_not_taken(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture, spoil: Callable[[Path], None]
) -> None:
    path, signer = _follower(settings, tmp_path)
    old = signer.key_id
    new = rotate_signing_key(path)
    assert signer.key_id == new
    published = signer.jwks()
    spoil(path)
    _touch(path)
    with caplog.at_level(logging.INFO, logger="registry.identity.registry_key"):
        for _ in range(3):
            assert signer.key_id == new
            assert signer.jwks() == published
            assert signer.public_key(old) is not None
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, caplog.records
    assert "keeping the keys already loaded" in errors[0].getMessage()


def test_a_vanished_file_leaves_the_keys_in_use(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path, signer = _follower(settings, tmp_path)
    new = rotate_signing_key(path)
    assert signer.key_id == new
    saved = path.read_bytes()
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="registry.identity.registry_key"):
        assert signer.key_id == new
        assert signer.key_id == new
    assert len(caplog.records) == 1, caplog.records
    # Back again, with one more key: followed.
    path.write_bytes(saved)
    newest = rotate_signing_key(path)
    assert signer.key_id == newest
