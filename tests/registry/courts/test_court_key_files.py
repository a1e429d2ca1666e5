"""`registry court key add`'s files: a refused `--generate` leaves no private key behind (the
rerun failed "File exists"), and a `--public-key` file that holds no public key is one
`Error:` line (a private key's PEM and random bytes were tracebacks)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.settings import Settings
from tests.support.harness import run_registry

pytestmark = pytest.mark.slow

COURT = "京0108"


def _error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [error] = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    return error


def _keys(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM court_keys")).scalar_one())


def test_a_refused_generate_leaves_no_key_file(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    private = tmp_path / "k6.pem"
    for _ in range(2):  # the same command again: the same refusal, not "File exists"
        error = _error(run_registry(settings, "court", "key", "add", "京9999", "--generate", str(private)))
        assert "court_not_found" in error, error
        assert not private.exists()
    assert _keys(engine) == 0


def test_generate_never_overwrites_a_file(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    assert run_registry(settings, "court", "add", COURT, "北京市海淀区人民法院").returncode == 0
    kept = tmp_path / "other.pem"
    kept.write_text("someone else's key\n")
    error = _error(run_registry(settings, "court", "key", "add", COURT, "--generate", str(kept)))
    assert str(kept) in error, error
    assert kept.read_text() == "someone else's key\n"
    assert _keys(engine) == 0


def test_a_private_key_is_refused_as_a_public_key(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    assert run_registry(settings, "court", "add", COURT, "北京市海淀区人民法院").returncode == 0
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private = tmp_path / "ck.pem"
    private.write_bytes(pem)
    done = run_registry(settings, "court", "key", "add", COURT, "--public-key", str(private))
    error = _error(done)
    assert "private key" in error, error
    assert pem.decode().splitlines()[1] not in done.stdout + done.stderr  # never echoed
    assert _keys(engine) == 0


@pytest.mark.parametrize(
    "content",
    [
        bytes(range(100)),  # binary, as random bytes are
        b"not base64 at all!",
        b"-----BEGIN PUBLIC KEY-----\nbroken\n-----END PUBLIC KEY-----\n",
    ],
    ids=["binary", "text", "broken PEM"],
)
def test_a_file_holding_no_public_key_is_one_line(
    settings: Settings, engine: sa.Engine, tmp_path: Path, content: bytes
) -> None:
    assert run_registry(settings, "court", "add", COURT, "北京市海淀区人民法院").returncode == 0
    path = tmp_path / "ck.pub"
    path.write_bytes(content)
    _error(run_registry(settings, "court", "key", "add", COURT, "--public-key", str(path)))
    assert _keys(engine) == 0


def test_a_public_key_pem_is_still_taken(settings: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    assert run_registry(settings, "court", "add", COURT, "北京市海淀区人民法院").returncode == 0
    public = tmp_path / "ck.pub.pem"
    public.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    done = run_registry(settings, "court", "key", "add", COURT, "--public-key", str(public))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("ck_")
    assert _keys(engine) == 1
