"""The registry's own signing keys (JWK Set) and the public allow-list every public surface uses."""

from __future__ import annotations

import base64
import json
import subprocess
import unicodedata
from datetime import date
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.identity.registry_key import Domain, generate_signing_key_file, load_registry_signer
from registry.listings.disclosure import age_at_publication, public_columns, public_entry
from registry.listings.models import Listing
from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_jwks_publishes_the_key_the_registry_signs_with(registry: Registry, settings: Settings) -> None:
    with registry.http() as http:
        response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jwk-set+json")
    keys = response.json()["keys"]
    signer = load_registry_signer(settings)
    assert keys[0]["kid"] == signer.key_id
    assert (keys[0]["kty"], keys[0]["crv"], keys[0]["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert "d" not in keys[0]  # never the private part
    message = b"{}"
    signature = signer.sign(Domain.EXPORT_MANIFEST, message)
    public = Ed25519PublicKey.from_public_bytes(_b64url_decode(keys[0]["x"]))
    public.verify(signature, b"registry-signature:export-manifest:v1\n" + message)


@pytest.mark.slow
def test_rotate_signing_keeps_old_key_published(tmp_path: Path, settings: Settings) -> None:
    key_file = tmp_path / "signing.json"
    scoped = settings.override(keys={"signing_key_file": key_file})
    assert generate_signing_key_file(key_file)
    before = load_registry_signer(scoped)
    old_signature = before.sign(Domain.EXPORT_MANIFEST, b"manifest")
    env = cli_env(settings) | {"REGISTRY_SIGNING_KEY_FILE": str(key_file)}
    done = subprocess.run(
        [registry_bin(), "keys", "rotate-signing"], env=env, capture_output=True, text=True, check=True
    )
    new_id = done.stdout.strip().splitlines()[-1]
    after = load_registry_signer(scoped)
    assert after.key_id == new_id != before.key_id
    assert [k["kid"] for k in after.jwks()["keys"]] == [new_id, before.key_id]
    assert after.verify(Domain.EXPORT_MANIFEST, before.key_id, old_signature, b"manifest")
    assert not after.verify(Domain.EXPORT_MANIFEST, new_id, old_signature, b"manifest")
    assert key_file.stat().st_mode & 0o077 == 0


def test_public_entry_shows_art6_fields_and_nothing_else(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court, creditor="北京某某投资有限公司")
    with registry.http(court.api_key) as http:
        listing_id = http.post("/v1/listings", json=registry.envelope(court, body)).json()["listing_id"]
    with registry.engine.connect() as conn:
        row = conn.execute(public_columns().where(Listing.id == listing_id)).one()
    today = date(2030, 1, 1)
    entry = public_entry(row, today)
    encoded = msgspec.json.encode(entry).decode()
    debtor = body["debtor"]
    assert entry.name == debtor["name"] and entry.kind == "person"
    number = debtor["id_number"]
    assert entry.identifier_masked == number[:2] + "****" + number[6:10] + "********"
    assert entry.id_type == "resident_id"
    assert debtor["id_number"] not in encoded
    assert "北京某某投资有限公司" not in encoded and "creditor" not in encoded
    assert "signature" not in encoded and "key_id" not in encoded
    # The age reached in the year of publication, whatever day the entry is read.
    assert entry.age_at_publication == entry.published_on.year - int(number[6:10])
    assert public_entry(row, date(2040, 6, 1)) == entry
    assert entry.sex == ("M" if int(debtor["id_number"][16]) % 2 else "F")
    assert entry.court_name == court.name and entry.province == "北京"
    assert entry.case_number == body["case_number"]
    assert entry.basis_document_number == body["basis"]["document_number"]
    assert entry.obligations == unicodedata.normalize("NFKC", body["obligations"])
    assert entry.grounds == body["grounds"]
    assert set(json.loads(encoded)) == {
        "id", "kind", "name", "sex", "age_at_publication", "id_type", "identifier_masked",
        "legal_representative",
        "court_code", "court_name", "province_code", "province", "case_number",
        "basis_document_number", "basis_issuer", "obligations", "amount_cents", "performance",
        "grounds", "filed_on", "published_on",
    }  # fmt: skip


def test_the_age_at_publication_is_never_finer_than_the_birth_year() -> None:
    # Read on any day, from any listing of the same person: one value per publication year.
    assert age_at_publication(1990, date(2020, 1, 1)) == age_at_publication(1990, date(2020, 12, 31)) == 30
