"""Removal certificates: issued to the person who names the listing with their identifier,
verified by the registry's endpoint and, offline, by an independent JOSE library (PyJWT)
against the JWK Set the registry publishes. The certificate alone lets no one test a guessed
number: the commitment's nonce goes to the applicant beside it, never inside it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from registry.corrections.certificates import CertificateSigner
from registry.settings import Settings
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import ending_today, expire_tomorrow, person_named, publish_one
from tests.support.publishing import remove, signer


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


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _commitment(key: str, kind: str, number: str) -> str:
    """The subject commitment as documented: HMAC-SHA256(key, kind 0x1f id 0x1f), key base64url."""
    material = "\x1f".join((kind, number, "")).encode()
    return _b64(hmac.new(_unb64(key), material, hashlib.sha256).digest())


def _verify(registry: Registry, token: str, **holder: str) -> tuple[int, dict[str, Any]]:
    with registry.http() as http:
        answer = http.post("/v1/public/certificates/verify", json={"certificate": token, **holder})
    return answer.status_code, answer.json()


def _removed(registry: Registry, court: CourtHandle, name: str) -> tuple[str, dict[str, Any]]:
    body = person_named(registry, court, name)
    listing_id = publish_one(registry, court, body)
    remove(registry, court, listing_id, reason="performed")
    return listing_id, body


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
    # The number is not in it, only its commitment, which the number and the nonce (returned
    # beside the certificate) open.
    assert number not in json.dumps(claims, ensure_ascii=False)
    assert claims["v"] == 2
    assert claims["subject_commitment"] == _commitment(str(answer["nonce"]), "person", number)
    # Nothing beyond the removal: no obligations, amounts, grounds.
    assert set(claims) == {
        "iss", "typ", "v", "jti", "iat", "listing_id", "court_code", "court_name", "case_number", "name",
        "subject_kind", "subject_commitment", "listed_on", "removed_on", "reason", "reason_text",
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


def test_the_certificate_alone_lets_no_one_test_a_number(registry: Registry, court: CourtHandle) -> None:
    """What the auditor did: from the token's claims (and header) alone, rebuild the digest of
    the right number. Every value in it is tried as a key, raw and base64url-decoded, with the
    commitment's HMAC and with plain and salted SHA-256: none matches any value."""
    listing_id, body = _removed(registry, court, "曹敏")
    number = body["debtor"]["id_number"]
    status_code, answer = _issue(registry, listing_id, number)
    assert status_code == 201, answer
    token = str(answer["certificate"])
    claims = _offline(registry, token)
    values = {str(v) for v in [*claims.values(), *jwt.get_unverified_header(token).values()]}
    keys = {b""} | {v.encode() for v in values}
    for value in values:
        with contextlib.suppress(ValueError, binascii.Error):
            keys.add(_unb64(value))
    material = "\x1f".join(("person", number, "")).encode()
    recomputed = {_b64(hashlib.sha256(material).digest())}
    for key in keys:
        recomputed.add(_b64(hmac.new(key, material, hashlib.sha256).digest()))
        recomputed.add(_b64(hashlib.sha256(key + material).digest()))
    assert recomputed.isdisjoint(values)
    # The nonce, returned beside the token and not in it (nor in its URL), opens it.
    nonce = str(answer["nonce"])
    assert len(_unb64(nonce)) == 32
    assert nonce not in token and nonce not in str(answer["verification_url"])
    assert _commitment(nonce, "person", number) in values

    # Online as offline: the number alone proves nothing, the number and the nonce do.
    other = registry.person_listing(court)["debtor"]["id_number"]
    assert _verify(registry, token, id_number=number, nonce=nonce)[1]["subject_matches"] is True
    assert _verify(registry, token, id_number=other, nonce=nonce)[1]["subject_matches"] is False
    wrong_nonce = _b64(secrets.token_bytes(32))
    assert _verify(registry, token, id_number=number, nonce=wrong_nonce)[1]["subject_matches"] is False
    status_code, verdict = _verify(registry, token, id_number=number)
    assert (status_code, verdict["genuine"], verdict["subject_matches"]) == (200, True, False)
    # Without a number the answer is as before.
    assert "subject_matches" not in _verify(registry, token)[1]
    # Refusals: a malformed number, a short nonce, a nonce without a number.
    assert (
        _verify(registry, token, id_number=number[:-1] + "0", nonce=nonce)[1]["code"] == "invalid_id_number"
    )
    assert _verify(registry, token, id_number=number, nonce="abc")[1]["code"] == "invalid_field"
    assert _verify(registry, token, nonce=nonce)[1]["code"] == "invalid_field"


def test_a_version_1_certificate_still_verifies_and_matches_its_number(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    """Certificates issued before version 2 carried their salt: still genuine, and matched
    against a number without a nonce (nothing the token did not already give away)."""
    listing_id, body = _removed(registry, court, "彭静")
    number = body["debtor"]["id_number"]
    claims = _offline(registry, str(_issue(registry, listing_id, number)[1]["certificate"]))
    salt = _b64(secrets.token_bytes(16))
    old = {k: v for k, v in claims.items() if k not in ("v", "subject_commitment")}
    old |= {"subject_salt": salt, "subject_digest": _commitment(salt, "person", number)}
    token = CertificateSigner(signer(settings)).sign(old)

    status_code, verdict = _verify(registry, token, id_number=number)
    assert (status_code, verdict["genuine"], verdict["subject_matches"]) == (200, True, True)
    assert verdict["claims"] == old
    other = registry.person_listing(court)["debtor"]["id_number"]
    assert _verify(registry, token, id_number=other)[1]["subject_matches"] is False


def test_the_pages_keep_the_nonce_off_the_printout_and_check_the_holder(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id, body = _removed(registry, court, "任洁")
    number = body["debtor"]["id_number"]
    with registry.http() as http:
        issued = http.post("/certificates", data={"listing": listing_id, "number": number})
    assert issued.status_code == 201
    # The nonce is on the page, in a closed section (not printed), outside the certificate.
    html = issued.text
    article, rest = html.split("</article>", 1)
    nonce = rest.split('id="certificate-nonce">', 1)[1].split("<", 1)[0]
    assert len(_unb64(nonce)) == 32 and nonce not in article
    assert "<details" in rest and "<details open" not in rest
    token = article.split('id="certificate-token">', 1)[1].split("<", 1)[0]
    assert nonce not in token

    def check(number_: str, nonce_: str) -> tuple[int, str]:
        with registry.http() as http:
            page = http.post(
                "/certificates/verify",
                data={"token": token, "id_kind": "id_number", "number": number_, "nonce": nonce_},
            )
        assert number_ not in page.text
        return page.status_code, page.text

    status_code, page = check(number, nonce)
    assert status_code == 200 and "号码核对相符" in page
    status_code, page = check(registry.person_listing(court)["debtor"]["id_number"], nonce)
    assert status_code == 200 and "号码核对不符" in page
    status_code, page = check(number, "")
    assert status_code == 422 and "请填写证明持有人提供的身份核对码" in page
