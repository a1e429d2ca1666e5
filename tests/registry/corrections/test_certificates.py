"""Removal certificates: issued to the person who names the listing with their identifier,
verified by the registry's endpoint and, offline, by an independent JOSE library (PyJWT)
against the JWK Set the registry publishes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tests.support.harness import CourtHandle, Registry
from tests.support.listings import ending_today, expire_tomorrow, person_named, publish_one
from tests.support.publishing import remove


def _issue(registry: Registry, listing_id: str, id_number: str) -> tuple[int, dict[str, object]]:
    with registry.http() as http:
        answer = http.post(
            "/v1/public/certificates", json={"listing": {"id": listing_id}, "id_number": id_number}
        )
    return answer.status_code, answer.json()


def _offline(registry: Registry, token: str) -> dict[str, object]:
    """What a bank does with the JWK Set and PyJWT, nothing of the registry's code."""
    with registry.http() as http:
        jwks = http.get("/.well-known/jwks.json").json()
    kid = jwt.get_unverified_header(token)["kid"]
    [key] = [k for k in jwks["keys"] if k["kid"] == kid]
    claims: dict[str, object] = jwt.decode(
        token, jwt.PyJWK(key).key, algorithms=["EdDSA"], options={"require": ["iat", "jti", "iss"]}
    )
    return claims


def _digest(salt: str, kind: str, number: str) -> str:
    """The subject digest as documented: HMAC-SHA256(key = salt, kind 0x1f id 0x1f name), name empty."""
    raw = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    material = "\x1f".join((kind, number, "")).encode()
    digest = hmac.new(raw, material, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_a_removed_listing_gets_a_certificate_any_jose_library_verifies(
    registry: Registry, court: CourtHandle
) -> None:
    body = person_named(registry, court, "冯伦")
    listing_id = publish_one(registry, court, body)
    number = body["debtor"]["id_number"]
    # Not while it is published.
    assert _issue(registry, listing_id, number)[1]["code"] == "listing_still_published"
    removed_on = remove(registry, court, listing_id, reason="performed")
    status_code, answer = _issue(registry, listing_id, number)
    assert status_code == 201, answer
    token = str(answer["certificate"])

    claims = _offline(registry, token)
    assert claims["typ"] == "removal-certificate"
    assert claims["listing_id"] == listing_id and claims["case_number"] == body["case_number"]
    assert claims["court_name"] == court.name and claims["name"] == "冯伦"
    assert claims["removed_on"] == removed_on.isoformat() and claims["listed_on"] == body["listed_on"]
    assert claims["reason"] == "performed" and "已履行" in str(claims["reason_text"])
    # The number is not in it, only its salted digest, which the holder of the number checks.
    assert number not in json.dumps(claims, ensure_ascii=False)
    assert claims["subject_digest"] == _digest(str(claims["subject_salt"]), "person", number)
    # Nothing beyond the removal: no obligations, amounts, grounds.
    assert set(claims) == {
        "iss", "typ", "jti", "iat", "listing_id", "court_code", "court_name", "case_number", "name",
        "subject_kind", "subject_salt", "subject_digest", "listed_on", "removed_on", "reason", "reason_text",
    }  # fmt: skip

    # The QR code's address carries the token to the public verification.
    url = urlsplit(str(answer["verification_url"]))
    assert url.path == "/certificates/verify" and parse_qs(url.query)["token"] == [token]
    with registry.http() as http:
        verdict = http.post("/v1/public/certificates/verify", json={"certificate": token}).json()
        assert verdict["genuine"] is True and verdict["claims"] == claims
        header, _payload, signature = token.split(".")
        forged_claims = dict(claims, reason="wrongly_listed")
        forged_payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
        forged = f"{header}.{forged_payload}.{signature}"
        assert http.post("/v1/public/certificates/verify", json={"certificate": forged}).json() == {
            "genuine": False,
            "reason": "altered",
            "detail": "the signature does not match: altered or forged",
        }
        assert http.post("/v1/public/certificates/verify", json={"certificate": "a.b"}).json()["reason"] == (
            "malformed"
        )
    with pytest.raises(jwt.InvalidSignatureError):
        _offline(registry, forged)


def test_an_expired_listing_gets_one_and_a_wrong_identifier_nothing(
    registry: Registry, court: CourtHandle
) -> None:
    body = ending_today(registry, court)
    listing_id = publish_one(registry, court, body)
    other = person_named(registry, court, "蒋勤")
    publish_one(registry, court, other)
    assert expire_tomorrow(registry) == 1
    wrong_code, wrong = _issue(registry, listing_id, other["debtor"]["id_number"])
    unknown_code, unknown = _issue(registry, "0" * 26, body["debtor"]["id_number"])
    assert (wrong_code, wrong) == (unknown_code, unknown) and wrong_code == 404
    status_code, answer = _issue(registry, listing_id, body["debtor"]["id_number"])
    assert status_code == 201
    assert _offline(registry, str(answer["certificate"]))["reason"] == "term_expired"
