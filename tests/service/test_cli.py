"""The `registry` command against the test database: courts, keys, clients, import, audit, rotation, demo."""

from __future__ import annotations

import ast
import base64
import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.eventlog.models import Event
from registry.listings.models import ListingVersion
from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin
from tests.support.listings import ending_today, removal_body

# Every test runs the `registry` command as a subprocess.
pytestmark = pytest.mark.slow

CLI_COURT = "苏0102"
CLI_COURT_NAME = "南京市玄武区人民法院"
ID_CHECK_CHARACTERS = "0123456789X"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [registry_bin(), *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _ok(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    result = _cli(settings, *args)
    assert result.returncode == 0, f"registry {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1].strip()


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _publish(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post("/v1/listings", json=registry.envelope(court, body))


def _populate(registry: Registry, court: CourtHandle) -> list[str]:
    """A few listings, an amendment and a removal, through the live server."""
    ids = []
    bodies = [registry.person_listing(court) for _ in range(4)]
    for body in bodies:
        response = _publish(registry, court, body)
        assert response.status_code == 201, response.text
        ids.append(response.json()["listing_id"])
    amended = dict(
        bodies[0], submission_id=str(uuid.uuid4()), obligations="被执行人应支付申请执行人人民币一万元。"
    )
    removal = removal_body(ids[1], registry.today)
    with registry.http(court.api_key) as http:
        response = http.post(f"/v1/listings/{ids[0]}/amendments", json=registry.envelope(court, amended))
        assert response.status_code == 200 and response.json()["outcome"] == "amended", response.text
        response = http.post(
            f"/v1/listings/{ids[1]}/removal", json=registry.envelope(court, removal, "removal")
        )
        assert response.status_code == 200 and response.json()["outcome"] == "removed", response.text
    return ids


def _published_ids(admin: httpx.Client) -> dict[str, str]:
    """submission_id -> listing id, from the event log."""
    events = admin.get("/v1/events", params={"limit": 1000}).json()["events"]
    return {e["data"]["submission_id"]: e["listing_id"] for e in events if e["type"] == "listing.published"}


# ---- courts, keys, clients ----


def test_court_and_key_commands(registry: Registry, settings: Settings, tmp_path: Path) -> None:
    added = _ok(settings, "court", "add", CLI_COURT, CLI_COURT_NAME)
    assert _last_line(added.stdout) == CLI_COURT

    pem = tmp_path / "k.pem"
    created = _ok(settings, "court", "key", "add", CLI_COURT, "--generate", str(pem))
    key_id = _last_line(created.stdout)
    assert key_id.startswith("ck_") and " " not in key_id
    assert pem.exists()
    assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)

    with registry.http() as anonymous:
        courts = anonymous.get("/v1/courts").json()["courts"]
    [court] = [c for c in courts if c["code"] == CLI_COURT]
    assert court["name"] == CLI_COURT_NAME and court["province_code"] == "32"
    [key] = court["keys"]
    assert key["key_id"] == key_id and key["revoked_at"] is None
    assert _b64url(key["public_key"]) == private.public_key().public_bytes_raw()

    revoked = _ok(settings, "court", "key", "revoke", key_id, "--reason", "test")
    assert key_id in revoked.stdout
    with registry.http() as anonymous:
        courts = anonymous.get("/v1/courts").json()["courts"]
    [court] = [c for c in courts if c["code"] == CLI_COURT]
    assert court["keys"][0]["revoked_at"] is not None

    again = _cli(settings, "court", "key", "revoke", key_id, "--reason", "test")
    assert again.returncode != 0
    assert "key_revoked" in again.stderr

    duplicate = _cli(settings, "court", "add", CLI_COURT, CLI_COURT_NAME)
    assert duplicate.returncode != 0 and "court_exists" in duplicate.stderr


def test_client_create_prints_a_key_the_server_accepts(
    registry: Registry, settings: Settings, tmp_path: Path
) -> None:
    _ok(settings, "court", "add", CLI_COURT, CLI_COURT_NAME)
    pem = tmp_path / "k.pem"
    key_id = _last_line(_ok(settings, "court", "key", "add", CLI_COURT, "--generate", str(pem)).stdout)
    created = _ok(settings, "client", "create", "x", "--role", "court", "--court", CLI_COURT)
    api_key = _last_line(created.stdout)
    assert api_key and " " not in api_key
    assert api_key not in created.stderr

    private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    court = CourtHandle(CLI_COURT, CLI_COURT_NAME, "32", key_id, private, api_key)
    body = registry.person_listing(court)
    response = _publish(registry, court, body)
    assert response.status_code == 201, response.text
    with registry.http(api_key) as http:
        read = http.get(f"/v1/listings/{response.json()['listing_id']}")
        assert read.status_code == 200 and read.json()["court_code"] == CLI_COURT
        assert http.get("/v1/events").status_code == 403  # authenticated, but a court client
    with registry.http("rk_not-a-real-key") as stranger:
        assert stranger.get(f"/v1/listings/{response.json()['listing_id']}").status_code == 401

    # A revoked key signs nothing from now on.
    _ok(settings, "court", "key", "revoke", key_id, "--reason", "compromised")
    refused = _publish(registry, court, registry.person_listing(court))
    assert refused.status_code == 422 and refused.json()["code"] == "key_revoked", refused.text

    unbound = _cli(settings, "client", "create", "y", "--role", "court")
    assert unbound.returncode != 0
    assert "court_binding" in unbound.stderr


# ---- import ----


def _bad_checksum(body: dict[str, Any]) -> dict[str, Any]:
    number = body["debtor"]["id_number"]
    wrong = next(ch for ch in ID_CHECK_CHARACTERS if ch != number[-1])
    return dict(body, debtor=dict(body["debtor"], id_number=number[:-1] + wrong))


def test_import_reports_rejections_and_is_idempotent(
    registry: Registry,
    court: CourtHandle,
    admin: httpx.Client,
    settings: Settings,
    tmp_path: Path,
    engine: sa.Engine,
) -> None:
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            # The tables' size estimates as they are now (empty: an earlier test's import left
            # its rows' count in reltuples), and no table analyzed by an earlier test.
            conn.execute(sa.text("ANALYZE listings, listing_versions, events"))
            conn.execute(sa.text("SELECT pg_stat_reset()"))
    bodies = [registry.listing(court) for _ in range(50)]
    bad = _bad_checksum(registry.person_listing(court))
    lines = [json.dumps(registry.envelope(court, body), ensure_ascii=False) for body in bodies]
    lines.insert(10, '{"listing": {"court_code": "京0105", "case_number": ')  # line 11: truncated JSON
    lines.insert(26, json.dumps(registry.envelope(court, bad), ensure_ascii=False))  # line 27
    path = tmp_path / "listings.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = _cli(settings, "import", str(path))
    assert result.returncode == 1, result.stderr
    summary = json.loads(_last_line(result.stdout))
    assert summary["lines"] == 52
    assert summary["created"] == 50 and summary["unchanged"] == 0 and summary["rejected"] == 2
    assert [(e["line"], e["code"]) for e in summary["first_errors"]] == [
        (11, "invalid_json"),
        (27, "invalid_id_number"),
    ]
    if engine.dialect.name == "postgresql":
        # An import that grew the list by a tenth or more leaves its tables analyzed: the
        # planner must not meet millions of new rows without statistics.
        with engine.connect() as conn:
            analyzed = conn.execute(
                sa.text(
                    "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
                    " AND relname IN ('listings', 'listing_versions', 'events')"
                )
            ).scalars()
            assert set(analyzed) == {"listings", "listing_versions", "events"}
    secrets = [b["debtor"].get("id_number") or b["debtor"]["credit_code"] for b in [*bodies, bad]]
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr

    published = _published_ids(admin)
    assert len(published) == 50
    for body in bodies:
        listing = admin.get(f"/v1/listings/{published[body['submission_id']]}")
        assert listing.status_code == 200, listing.text
        debtor = listing.json()["debtor"]
        assert debtor.get("id_number", debtor.get("credit_code")) == (
            body["debtor"].get("id_number") or body["debtor"]["credit_code"]
        )
        assert listing.json()["status"] == "active" and listing.json()["case_number"] == body["case_number"]

    again = _cli(settings, "import", str(path))
    assert again.returncode == 1, again.stderr
    summary = json.loads(_last_line(again.stdout))
    assert summary["created"] == 0 and summary["unchanged"] == 50 and summary["rejected"] == 2
    assert len(_published_ids(admin)) == 50


def test_import_names_the_line_of_the_file_despite_blank_lines(
    registry: Registry, court: CourtHandle, settings: Settings, tmp_path: Path
) -> None:
    good = [
        json.dumps(registry.envelope(court, registry.listing(court)), ensure_ascii=False) for _ in range(3)
    ]
    path = tmp_path / "gappy.jsonl"
    # line 1 good, line 2 blank, line 3 good, line 4 blank, line 5 not JSON, line 6 good
    path.write_text(f"{good[0]}\n\n{good[1]}\n\n{{oops\n{good[2]}\n", encoding="utf-8")

    result = _cli(settings, "import", str(path))
    assert result.returncode == 1, result.stderr
    summary = json.loads(_last_line(result.stdout))
    assert summary["created"] == 3 and summary["rejected"] == 1
    assert [(e["line"], e["code"]) for e in summary["first_errors"]] == [(5, "invalid_json")]


# ---- audit ----


def test_audit_verify_passes_on_an_honest_log(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    _populate(registry, court)
    result = _ok(settings, "audit", "verify")
    assert "audit ok" in result.stdout
    # 4 published versions + 1 amendment + 1 removal, all signed by the court.
    assert "6 signatures checked" in result.stdout


@pytest.mark.parametrize("column", ["actor", "data"])
def test_audit_verify_names_an_edited_event(
    registry: Registry, court: CourtHandle, settings: Settings, column: str
) -> None:
    _populate(registry, court)
    _ok(settings, "audit", "verify")
    value: Any = "mallory" if column == "actor" else {"client_id": "cl_forged", "role": "admin"}
    with registry.engine.begin() as conn:
        changed = conn.execute(sa.update(Event).where(Event.seq == 3).values({column: value}))
        assert changed.rowcount == 1

    result = _cli(settings, "audit", "verify")
    assert result.returncode == 1, result.stdout
    assert "event 3" in result.stderr
    assert "audit ok" not in result.stdout


def test_audit_verify_names_a_forged_signature(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    _populate(registry, court)
    with registry.engine.begin() as conn:
        row = conn.execute(
            sa.select(ListingVersion.listing_id, ListingVersion.version, ListingVersion.signature)
            .order_by(ListingVersion.listing_id.desc(), ListingVersion.version.desc())
            .limit(1)
        ).one()
        forged = bytearray(bytes(row.signature))
        forged[7] ^= 0x01
        conn.execute(
            sa.update(ListingVersion)
            .where(ListingVersion.listing_id == row.listing_id, ListingVersion.version == row.version)
            .values(signature=bytes(forged))
        )

    result = _cli(settings, "audit", "verify")
    assert result.returncode == 1, result.stdout
    assert f"listing {row.listing_id} version {row.version}" in result.stderr


def test_audit_verify_notices_a_deleted_last_event(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    _populate(registry, court)
    with registry.engine.begin() as conn:
        last = conn.execute(sa.select(sa.func.max(Event.seq))).scalar_one()
        conn.execute(sa.delete(Event).where(Event.seq == last))

    result = _cli(settings, "audit", "verify")
    assert result.returncode == 1, result.stdout
    assert "FAILED" in result.stderr
    assert "audit ok" not in result.stdout


# ---- data key rotation ----


@pytest.fixture
def restore_secrets(settings: Settings, registry: Registry) -> Iterator[Path]:
    """Rotation rewrites the secrets file; put it back so later tests see the server's keys."""
    path = Path(settings.keys.secrets_file)
    saved = path.read_bytes()
    try:
        yield path
    finally:
        path.write_bytes(saved)


def _active_key(secrets_file: Path) -> str:
    return str(json.loads(secrets_file.read_text())["active_data_key_id"])


def _cipher_key_ids(engine: sa.Engine) -> set[str]:
    ids: set[str] = set()
    with engine.connect() as conn:
        for query in (
            "SELECT debtor_id_cipher FROM listings",
            "SELECT signed_cipher FROM listing_versions",
            "SELECT signed_cipher FROM removals WHERE signed_cipher IS NOT NULL",
        ):
            for (blob,) in conn.execute(sa.text(query)):
                raw = bytes(blob)
                ids.add(raw[2 : 2 + raw[1]].decode())
    return ids


def test_keys_rotate_reencrypts_everything_under_a_new_key(
    registry: Registry, court: CourtHandle, settings: Settings, restore_secrets: Path
) -> None:
    _populate(registry, court)
    old = _active_key(restore_secrets)
    assert _cipher_key_ids(registry.engine) == {old}

    rotated = _ok(settings, "keys", "rotate")
    assert "re-encrypted" in rotated.stdout
    new = _active_key(restore_secrets)
    assert new != old
    assert _cipher_key_ids(registry.engine) == {new}
    assert "audit ok" in _ok(settings, "audit", "verify").stdout

    # A fresh CLI process decrypts what the last one wrote, and can rotate again.
    _ok(settings, "keys", "rotate")
    newest = _active_key(restore_secrets)
    assert newest not in (old, new)
    assert _cipher_key_ids(registry.engine) == {newest}
    assert "audit ok" in _ok(settings, "audit", "verify").stdout


def test_server_reads_listings_after_keys_rotate(
    registry: Registry, court: CourtHandle, settings: Settings, restore_secrets: Path
) -> None:
    ids = _populate(registry, court)
    with registry.http(court.api_key) as http:
        before = http.get(f"/v1/listings/{ids[2]}").json()
    _ok(settings, "keys", "rotate")

    with registry.http(court.api_key) as http:
        after = http.get(f"/v1/listings/{ids[2]}")
        evidence = http.get(f"/v1/listings/{ids[2]}/versions/1")
    assert after.status_code == 200, after.text
    assert after.json()["debtor"]["id_number"] == before["debtor"]["id_number"]
    assert evidence.status_code == 200, evidence.text
    court.private_key.public_key().verify(
        _b64url(evidence.json()["signature"]), evidence.json()["signed_json"].encode()
    )


def test_server_encrypts_new_listings_under_the_rotated_key(
    registry: Registry, court: CourtHandle, settings: Settings, restore_secrets: Path
) -> None:
    _populate(registry, court)
    _ok(settings, "keys", "rotate")
    new = _active_key(restore_secrets)

    response = _publish(registry, court, registry.person_listing(court))
    assert response.status_code == 201, response.text
    with registry.engine.connect() as conn:
        blob = bytes(
            conn.execute(
                sa.text("SELECT debtor_id_cipher FROM listings WHERE id = :id"),
                {"id": response.json()["listing_id"]},
            ).scalar_one()
        )
    assert blob[2 : 2 + blob[1]].decode() == new


# ---- demo ----


def test_demo_loads_signed_listings_that_pass_audit(registry: Registry, settings: Settings) -> None:
    # Demo signing keys are kept beside the secrets file; the database is empty, so start afresh.
    (Path(settings.keys.secrets_file).parent / "demo-keys.json").unlink(missing_ok=True)
    result = _ok(settings, "demo", "--listings", "200")
    summary = json.loads(_last_line(result.stdout))
    assert summary["listings"]["created"] == 200
    assert summary["listings"]["rejected"] == 0
    assert summary["courts"] > 1

    audit = _ok(settings, "audit", "verify")
    assert "audit ok" in audit.stdout
    assert "200 signatures checked" in audit.stdout
    with registry.http() as anonymous:
        courts = anonymous.get("/v1/courts").json()["courts"]
    assert len(courts) == summary["courts"] and all(c["keys"] for c in courts)


def test_expire_command_expires_ended_terms(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    response = _publish(registry, court, ending_today(registry, court))
    assert response.status_code == 201, response.text
    # The day after the term's last day comes: an ended term is refused at the door, so the
    # clock is moved on by moving the stored last day back to yesterday.
    with registry.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE listings SET expires_on = :yesterday WHERE id = :id"),
            {"yesterday": registry.today - timedelta(days=1), "id": response.json()["listing_id"]},
        )

    result = _ok(settings, "expire")
    assert _last_line(result.stdout) == "expired 1"
    with registry.http(court.api_key) as http:
        listing = http.get(f"/v1/listings/{response.json()['listing_id']}").json()
    assert listing["status"] == "expired" and listing["removal"]["reason"] == "term_expired"
    assert "audit ok" in _ok(settings, "audit", "verify").stdout


def test_the_image_holds_every_package_the_command_imports() -> None:
    """`registry demo` and `registry bench` failed in the image with ModuleNotFoundError:
    deploy/Containerfile copied the wheel's packages only, not demo/ and bench/."""
    root = Path(__file__).resolve().parents[2]
    imported = {
        (node.module or "").split(".")[0]
        for path in (root / "service").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    ours = {name for name in imported if (root / name / "__init__.py").exists()}
    assert {"registry", "demo", "bench"} <= ours
    image = (root / "deploy" / "Containerfile").read_text().splitlines()
    copied = {line.split()[1] for line in image if line.startswith("COPY ")}
    [compiled] = [line for line in image if "compileall" in line]
    assert ours <= copied, ours - copied
    assert ours <= set(compiled.split()), ours - set(compiled.split())
