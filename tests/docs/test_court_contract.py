"""The worked signing example of docs/court-contract.md, run as written: the Python snippet,
then the OpenSSL command line (with the operator's onboarding commands before it), each
envelope sent to the test server, which must answer 201."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.clients.services import create_client
from registry.courts.services import add_court, add_key
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.docs import document, labelled_examples
from tests.support.harness import Registry, cli_env, registry_bin

EXAMPLES = labelled_examples(document("docs/court-contract.md"))
DEMO_URL = "http://127.0.0.1:8000"


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_document_holds_every_step_of_the_example() -> None:
    assert set(EXAMPLES) >= {"keygen.sh", "onboard.sh", "listing.json", "sign.py", "sign.sh", "send.sh"}
    assert DEMO_URL in EXAMPLES["send.sh"]


def test_the_python_example_signs_a_listing_the_registry_accepts_and_can_reverify(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "court-key.pem").write_bytes(pem)
    (tmp_path / "listing.json").write_text(EXAMPLES["listing.json"], encoding="utf-8")
    now = utcnow()
    with registry.engine.begin() as conn:
        add_court(conn, "京0105", "北京市朝阳区人民法院", None, actor="test", now=now)
        key_id = add_key(
            conn,
            "京0105",
            private.public_key().public_bytes_raw(),
            valid_from=now - timedelta(minutes=1),
            valid_until=None,
            actor="test",
            now=now,
        )
        _, api_key = create_client(conn, "朝阳法院执行局", "court", "京0105", actor="test", now=now)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURT_KEY_ID", key_id)
    exec(compile(EXAMPLES["sign.py"], "docs/court-contract.md: sign.py", "exec"), {})

    envelope = (tmp_path / "envelope.json").read_bytes()
    headers = {"Content-Type": "application/json"}
    with registry.http(api_key) as http:
        created = http.post("/v1/listings", content=envelope, headers=headers)
        assert created.status_code == 201, created.text
        assert created.json()["outcome"] == "created"
        again = http.post("/v1/listings", content=envelope, headers=headers)
        assert (again.status_code, again.json()["listing_id"]) == (200, created.json()["listing_id"])
        evidence = http.get(f"/v1/listings/{created.json()['listing_id']}/versions/1").json()

    # "Re-verify later": the stored bytes and signature, against the key GET /v1/courts publishes.
    with registry.http() as http:
        courts = http.get("/v1/courts").json()["courts"]
    [court] = [c for c in courts if c["code"] == "京0105"]
    [key] = [k for k in court["keys"] if k["key_id"] == evidence["key_id"]]
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(key["public_key"]))
    public.verify(b64url_decode(evidence["signature"]), evidence["signed_json"].encode())


def _raw_ed25519_signing_works(openssl: str, scratch: Path) -> bool:
    key, message = scratch / "probe.pem", scratch / "probe.txt"
    message.write_text("probe")
    made = subprocess.run(
        [openssl, "genpkey", "-algorithm", "ed25519", "-out", str(key)],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        return False
    signed = subprocess.run(
        [openssl, "pkeyutl", "-sign", "-rawin", "-inkey", str(key), "-in", str(message)],
        capture_output=True,
        check=False,
    )
    return signed.returncode == 0 and len(signed.stdout) == 64


def _run(command: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", command], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_the_command_line_example_onboards_a_court_and_signs_what_python_signs(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    openssl, jq = shutil.which("openssl"), shutil.which("jq")
    if openssl is None or jq is None:
        pytest.skip("the command-line example needs openssl and jq on PATH")
    if not _raw_ed25519_signing_works(openssl, tmp_path):
        pytest.skip("this openssl cannot sign raw Ed25519 (`pkeyutl -sign -rawin` needs OpenSSL 3)")
    env = cli_env(settings) | {"PATH": f"{Path(registry_bin()).parent}{os.pathsep}{os.environ['PATH']}"}

    _run(EXAMPLES["keygen.sh"], tmp_path, env)
    onboarding = [line for line in EXAMPLES["onboard.sh"].splitlines() if line.strip()]
    assert [line.split()[1:3] for line in onboarding] == [
        ["court", "add"],
        ["court", "key"],
        ["client", "create"],
    ]
    _run(onboarding[0], tmp_path, env)
    env["COURT_KEY_ID"] = _run(onboarding[1], tmp_path, env).strip().splitlines()[-1]
    env["COURT_API_KEY"] = _run(onboarding[2], tmp_path, env).strip().splitlines()[-1]

    (tmp_path / "listing.json").write_text(EXAMPLES["listing.json"], encoding="utf-8")
    _run(EXAMPLES["sign.sh"], tmp_path, env)
    from_shell = json.loads((tmp_path / "envelope.json").read_text(encoding="utf-8"))

    python_dir = tmp_path / "python"
    python_dir.mkdir()
    for name in ("listing.json", "court-key.pem"):
        shutil.copy(tmp_path / name, python_dir / name)
    subprocess.run(
        [sys.executable, "-c", EXAMPLES["sign.py"]], cwd=python_dir, env=env, timeout=60, check=True
    )
    from_python = json.loads((python_dir / "envelope.json").read_text(encoding="utf-8"))
    assert from_shell == from_python  # same canonical bytes, same deterministic signature

    answer = _run(EXAMPLES["send.sh"].replace(DEMO_URL, registry.url), tmp_path, env)
    assert json.loads(answer)["status"] == 201, answer
