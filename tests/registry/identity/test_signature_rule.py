"""Which Ed25519 signatures the registry accepts (docs/court-contract.md, "Which signatures
verify"): libsodium's strict rule, with concrete vectors beside OpenSSL's answer for each,
and the registration check that keeps a key libsodium would refuse out of the registry."""

from __future__ import annotations

import base64
import subprocess
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.courts.services import add_key, key_id_for, revoke_key
from registry.identity.canonical import canonical_json
from registry.identity.signing import b64url, sign_envelope, verify_signature, weak_public_key
from registry.problems import Problem
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry, cli_env, registry_bin

ORDER = 2**252 + 27742317777372353535851937790883648493  # L, the prime subgroup's order
FIELD_PRIME = 2**255 - 19
# The neutral point (x = 0, y = 1): order 1, so k·A vanishes for every message.
IDENTITY = (1).to_bytes(32, "little")
# The same point encoded with y = p + 1: not canonical.
IDENTITY_NON_CANONICAL = (FIELD_PRIME + 1).to_bytes(32, "little")
# A point of order 8 (from libsodium's list of small-order encodings).
ORDER_EIGHT = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
MESSAGE = canonical_json({"case_number": "（2024）京0105执1234号", "amount_cents": 100})
PRIVATE = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = PRIVATE.public_key().public_bytes_raw()


def openssl_accepts(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def with_s(signature: bytes, s: int) -> bytes:
    return signature[:32] + s.to_bytes(32, "little")


def test_a_valid_signature_is_accepted_by_both() -> None:
    signature = PRIVATE.sign(MESSAGE)
    assert openssl_accepts(PUBLIC, signature, MESSAGE)
    assert verify_signature(PUBLIC, signature, MESSAGE)
    assert not verify_signature(PUBLIC, signature, MESSAGE + b" ")


def test_a_non_canonical_s_is_refused_by_both() -> None:
    signature = PRIVATE.sign(MESSAGE)
    malleated = with_s(signature, int.from_bytes(signature[32:], "little") + ORDER)
    assert not openssl_accepts(PUBLIC, malleated, MESSAGE)
    assert not verify_signature(PUBLIC, malleated, MESSAGE)


def test_a_small_order_key_verifies_anything_under_openssl_and_nothing_under_the_registry() -> None:
    # R = identity, S = 0: S·B = R + k·A holds for every message when A is the identity.
    forged = IDENTITY + bytes(32)
    assert openssl_accepts(IDENTITY, forged, MESSAGE)
    assert openssl_accepts(IDENTITY, forged, b"any other message")
    assert not verify_signature(IDENTITY, forged, MESSAGE)


def test_a_non_canonical_key_encoding_is_accepted_by_openssl_and_refused() -> None:
    forged = IDENTITY + bytes(32)
    assert openssl_accepts(IDENTITY_NON_CANONICAL, forged, MESSAGE)
    assert not verify_signature(IDENTITY_NON_CANONICAL, forged, MESSAGE)


def test_a_non_canonical_r_is_refused_by_both() -> None:
    forged = IDENTITY_NON_CANONICAL + bytes(32)
    assert not openssl_accepts(IDENTITY, forged, MESSAGE)
    assert not verify_signature(IDENTITY, forged, MESSAGE)


@pytest.mark.parametrize("length", [0, 63, 65])
def test_a_signature_of_the_wrong_length_is_refused(length: int) -> None:
    assert not verify_signature(PUBLIC, PRIVATE.sign(MESSAGE)[:length].ljust(length, b"\0"), MESSAGE)


@pytest.mark.parametrize(
    ("key", "why"),
    [
        pytest.param(IDENTITY, "prime-order subgroup", id="identity"),
        pytest.param(ORDER_EIGHT, "prime-order subgroup", id="order-8"),
        pytest.param(IDENTITY_NON_CANONICAL, "canonical", id="non-canonical"),
        pytest.param(PUBLIC[:31], "32 bytes", id="short"),
    ],
)
def test_a_weak_key_is_refused_at_registration(
    registry: Registry, court: CourtHandle, key: bytes, why: str
) -> None:
    now = utcnow()
    with registry.engine.connect() as conn:
        keys_before = conn.execute(sa.text("SELECT count(*) FROM court_keys")).scalar_one()
        with pytest.raises(Problem) as refused:
            add_key(conn, court.code, key, valid_from=now, valid_until=None, actor="test", now=now)
        conn.rollback()
        assert conn.execute(sa.text("SELECT count(*) FROM court_keys")).scalar_one() == keys_before
    assert (refused.value.status, refused.value.code) == (422, "invalid_public_key")
    assert why in refused.value.detail
    assert weak_public_key(key) is not None


def test_a_generated_key_passes_the_registration_check() -> None:
    for _ in range(20):
        assert weak_public_key(Ed25519PrivateKey.generate().public_key().public_bytes_raw()) is None


def _keys_check(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [registry_bin(), "keys", "check"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_small_order_key_registered_before_the_check_verifies_nothing_and_is_reported(
    registry: Registry, court: CourtHandle, admin: httpx.Client, settings: Settings
) -> None:
    """A key stored before registration checked keys (here written straight into the table)
    verified any forged listing under OpenSSL's rule; now the signature is refused."""
    now = utcnow()
    key_id = key_id_for(IDENTITY)
    with registry.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO court_keys (key_id, court_code, public_key, valid_from, created_at) "
                "VALUES (:key_id, :court, :key, :since, :since)"
            ),
            {"key_id": key_id, "court": court.code, "key": IDENTITY, "since": now - timedelta(days=1)},
        )
    body = registry.person_listing(court)
    envelope = {"listing": body, "signature": {"key_id": key_id, "value": b64url(IDENTITY + bytes(32))}}
    honest = sign_envelope("listing", registry.person_listing(court), court.private_key, court.key_id)
    signature = base64.urlsafe_b64decode(honest["signature"]["value"] + "==")
    honest["signature"]["value"] = b64url(with_s(signature, int.from_bytes(signature[32:], "little") + ORDER))
    with registry.http(court.api_key) as http:
        for sent in (envelope, honest):
            response = http.post("/v1/listings", json=sent)
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "signature_invalid"
            assert response.json()["pointer"] == "/signature/value"
        # The court that holds the weak key learns to replace it; an honest key's bad
        # signature is only a bad signature.
        assert "register a new key" in http.post("/v1/listings", json=envelope).json()["detail"]
        assert "register a new key" not in http.post("/v1/listings", json=honest).json()["detail"]
    with registry.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one() == 0

    checked = _keys_check(settings)
    assert checked.returncode == 0, checked.stderr
    assert f"court key {key_id} of {court.code} verifies no signature" in checked.stdout
    assert court.key_id not in checked.stdout
    with registry.engine.begin() as conn:
        revoke_key(conn, key_id, "weak", actor="test", now=utcnow())
    checked = _keys_check(settings)
    assert key_id not in checked.stdout
