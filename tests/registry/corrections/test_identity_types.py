"""A person or organisation listed under any of the registry's identifier types (a passport, a
Hong Kong or Macao permit, an organisation code, a foreign registration; not only a resident ID
or a credit code) applies for correction and obtains a removal certificate that verifies with
their identifier and with no other, over the JSON API; refusals point at the field at fault."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from tests.support.corrections import IDENTITIES, application, apply, committed, listed_as, status
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import passport_holder_named, publish_one
from tests.support.publishing import remove


def _certificate(
    registry: Registry, listing_id: str, identifier: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    with registry.http() as http:
        answer = http.post("/v1/public/certificates", json={"listing": {"id": listing_id}, **identifier})
    return answer.status_code, answer.json()


def _verify(registry: Registry, token: str, **holder: Any) -> tuple[int, dict[str, Any]]:
    with registry.http() as http:
        answer = http.post("/v1/public/certificates/verify", json={"certificate": token, **holder})
    return answer.status_code, answer.json()


def _hmac(nonce: str, kind: str, number: str) -> str:
    """The documented commitment, computed here: HMAC-SHA256(nonce, kind 0x1f number 0x1f)."""
    key = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    digest = hmac.new(key, f"{kind}\x1f{number}\x1f".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", list(IDENTITIES))
def test_listed_under_any_identifier_they_apply_and_get_a_certificate_of_their_own(
    registry: Registry, court: CourtHandle, kind: str
) -> None:
    identity, other = IDENTITIES[kind]
    body = listed_as(registry, court, "司马安", identity)
    listing_id = publish_one(registry, court, body)

    # Another identifier of the same type is not theirs: the one refusal of an unknown listing.
    wrong = application(listing_id, body)
    wrong["applicant"] = {k: v for k, v in wrong["applicant"].items() if k not in identity} | other
    refused = apply(registry, wrong)
    assert (refused.status_code, refused.json()["code"]) == (404, "listing_not_found"), refused.text
    filed = apply(registry, application(listing_id, body))
    assert filed.status_code == 201, filed.text
    receipt = filed.json()
    assert status(registry, receipt["application_number"], receipt["tracking_code"]).json()["status"] == (
        "under_review"
    )

    remove(registry, court, listing_id)
    assert _certificate(registry, listing_id, other)[0] == 404
    code, issued = _certificate(registry, listing_id, identity)
    assert code == 201, issued
    token, nonce = issued["certificate"], issued["nonce"]
    claims = issued["claims"]
    assert claims["name"] == "司马安" and claims["listing_id"] == listing_id
    subject_kind, number = committed(identity)
    assert claims["subject_kind"] == subject_kind
    assert claims["subject_commitment"] == _hmac(nonce, subject_kind, number)

    # The holder's identifier and nonce match it; another identifier of the type does not.
    code, verdict = _verify(registry, token, nonce=nonce, **identity)
    assert (code, verdict["genuine"], verdict["subject_matches"]) == (200, True, True), verdict
    code, verdict = _verify(registry, token, nonce=nonce, **other)
    assert (code, verdict["genuine"], verdict["subject_matches"]) == (200, True, False), verdict


def test_a_passport_number_without_its_nationality_is_refused_at_the_field(
    registry: Registry, court: CourtHandle
) -> None:
    body = passport_holder_named(registry, court, "Anne MARTIN")
    listing_id = publish_one(registry, court, body)
    without = application(listing_id, body)
    del without["applicant"]["nationality"]
    refused = apply(registry, without)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["pointer"]) == (
        "invalid_nationality",
        "/applicant/nationality",
    )
    code, answer = _certificate(registry, listing_id, {"id_type": "passport", "id_number": "E1234567"})
    assert (code, answer["code"], answer["pointer"]) == (422, "invalid_nationality", "/nationality")

    remove(registry, court, listing_id)
    code, issued = _certificate(
        registry, listing_id, {"id_type": "passport", "id_number": "e1234567", "nationality": "can"}
    )
    assert code == 201, issued  # normalised as a listing's: case does not matter
    code, answer = _verify(
        registry, issued["certificate"], id_type="passport", id_number="E1234567", nonce=issued["nonce"]
    )
    assert (code, answer["code"], answer["pointer"]) == (422, "invalid_nationality", "/nationality")


@pytest.mark.parametrize(
    ("applicant", "code", "pointer"),
    [
        ({"id_type": "driving_licence", "id_number": "H12345678"}, "unknown_id_type", "/applicant/id_type"),
        (
            {"id_type": "passport", "id_number": "E1234567", "nationality": "XXX"},
            "invalid_nationality",
            "/applicant/nationality",
        ),
        ({"organization_code": "60003734-2"}, "invalid_organization_code", "/applicant/organization_code"),
        (
            {"registration": {"country": "UK", "number": "SC123456"}},
            "invalid_registration_country",
            "/applicant/registration/country",
        ),
        (
            {"registration": {"country": "GBR", "number": "SC 12#3"}},
            "invalid_registration_number",
            "/applicant/registration/number",
        ),
        # Exactly one identifier, as in a bank's check.
        (
            {"organization_code": "60003734-1", "credit_code": "91110000600037341L"},
            "subject_identifier",
            "/applicant",
        ),
        ({"id_type": "passport", "nationality": "CAN"}, "subject_identifier", "/applicant"),
    ],
)
def test_an_identifier_that_is_not_valid_is_refused_with_the_bank_checks_code(
    registry: Registry, court: CourtHandle, applicant: dict[str, Any], code: str, pointer: str
) -> None:
    body = passport_holder_named(registry, court, "Anne MARTIN")
    listing_id = publish_one(registry, court, body)
    sent = application(listing_id, body)
    sent["applicant"] = {"name": "Anne MARTIN", **applicant}
    refused = apply(registry, sent)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["pointer"]) == (code, pointer)


def test_an_application_number_is_read_in_any_case(registry: Registry, court: CourtHandle) -> None:
    """Application numbers are ULIDs, Crockford base32, which is case-insensitive: typed in
    lower case, or in full-width characters, it is the same application."""
    body = passport_holder_named(registry, court, "Anne MARTIN")
    listing_id = publish_one(registry, court, body)
    filed = apply(registry, application(listing_id, body))
    assert filed.status_code == 201, filed.text
    number, code = filed.json()["application_number"], filed.json()["tracking_code"]
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in number.lower())
    for typed in (number.lower(), f" {full_width} "):
        seen = status(registry, typed, code)
        assert seen.status_code == 200, seen.text
        assert seen.json()["application_number"] == number
    with registry.http() as http:
        # Reconsideration reads it so too (refused here for what it is: nothing to reconsider).
        asked = http.post(
            "/v1/public/corrections/reconsideration",
            json={"application_number": number.lower(), "tracking_code": code, "statement": "理由"},
        )
    assert (asked.status_code, asked.json()["code"]) == (409, "reconsideration_not_available")
    assert status(registry, number.lower(), code + "x").status_code == 404
