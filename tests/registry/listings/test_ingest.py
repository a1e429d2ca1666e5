"""Signed ingest over HTTP: what a court (or an admin) sees when it publishes listings.

Every rejection is checked three ways: the HTTP status, the stable `code` of the RFC 9457
problem (served as application/problem+json), and that nothing was written: the event log
head is where it was before the request.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.courts.services import add_key, revoke_key
from registry.identity.signing import public_bytes, sign_envelope
from registry.listings.ingest import INLINE_LIMIT
from registry.settings import Settings
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import new_submission, post_removal, publish_many, publish_one, removal_body
from tests.support.processes import pool_workers

SHANGHAI = {"code": "沪0115", "name": "上海市浦东新区人民法院", "province": "31"}
ID_CHECK_CHARACTERS = "0123456789X"
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


# ---- helpers ----


def head(admin: httpx.Client) -> int:
    """The number of the last event in the log: any write moves it."""
    response = admin.get("/v1/events")
    assert response.status_code == 200, response.text
    value: int = response.json()["head"]
    return value


def listing_count(registry: Registry) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one())


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    assert problem["type"].endswith(code)
    assert problem["title"] and problem["detail"]
    return problem


def assert_rejected(
    registry: Registry,
    admin: httpx.Client,
    http: httpx.Client,
    envelope: Any,
    status: int,
    code: str,
    pointer: str | None = None,
) -> dict[str, Any]:
    """POST one envelope, expect the problem, and check that nothing was written."""
    before, listings = head(admin), listing_count(registry)
    # Serialised by hand: httpx sends no body at all for json=None.
    content = json.dumps(envelope, ensure_ascii=False).encode()
    response = http.post("/v1/listings", content=content, headers={"content-type": "application/json"})
    problem = assert_problem(response, status, code)
    if pointer is not None:
        assert problem.get("pointer") == pointer, problem
    assert head(admin) == before
    assert listing_count(registry) == listings
    return problem


def publish(http: httpx.Client, envelope: dict[str, Any]) -> str:
    response = http.post("/v1/listings", json=envelope)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["outcome"] == "created" and body["version"] == 1
    listing_id: str = body["listing_id"]
    return listing_id


def organization_listing(registry: Registry, court: CourtHandle, **overrides: Any) -> dict[str, Any]:
    while True:
        body = registry.listing(court)
        if body["debtor"]["kind"] == "organization":
            body.update(overrides)
            return body


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def other_character(current: str, alphabet: str) -> str:
    return next(ch for ch in alphabet if ch != current)


def shanghai(registry: Registry) -> CourtHandle:
    return registry.court(code=SHANGHAI["code"], name=SHANGHAI["name"], province=SHANGHAI["province"])


# ---- 1. publishing and reading back ----


def test_publish_returns_201_with_a_listing_id_and_the_court_reads_it_back(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, body))
        assert response.status_code == 201, response.text
        assert response.headers["content-type"].startswith("application/json")
        created = response.json()
        assert created["outcome"] == "created" and created["version"] == 1 and created["listing_id"]
        read = http.get(f"/v1/listings/{created['listing_id']}")
    assert read.status_code == 200, read.text
    listing = read.json()
    assert listing["id"] == created["listing_id"]
    assert listing["status"] == "active"
    assert listing["court_code"] == court.code and listing["province_code"] == court.province_code
    assert listing["case_number"] == body["case_number"]
    assert listing["debtor"]["kind"] == "person"
    assert listing["debtor"]["id_number"] == body["debtor"]["id_number"]
    assert listing["debtor"]["name"] == body["debtor"]["name"]
    assert listing["filed_on"] == body["filed_on"] and listing["listed_on"] == body["listed_on"]
    assert [v["submission_id"] for v in listing["versions"]] == [body["submission_id"]]
    assert head(admin) == before + 1  # one listing.published event


def test_identical_resubmission_answers_200_with_the_same_listing(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    with registry.http(court.api_key) as http:
        listing_id = publish(http, registry.envelope(court, body))
        before = head(admin)
        again = http.post("/v1/listings", json=registry.envelope(court, copy.deepcopy(body)))
    assert again.status_code == 200, again.text
    assert again.json() == {"status": 200, "listing_id": listing_id, "version": 1, "outcome": "unchanged"}
    assert head(admin) == before
    assert listing_count(registry) == 1


def test_reused_submission_id_with_different_content_is_a_409_conflict(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    with registry.http(court.api_key) as http:
        listing_id = publish(http, registry.envelope(court, body))
        changed = copy.deepcopy(body)
        changed["obligations"] = body["obligations"] + "另需支付迟延履行期间的债务利息。"
        problem = assert_rejected(
            registry, admin, http, registry.envelope(court, changed), 409, "submission_conflict"
        )
    assert problem["listing_id"] == listing_id


def test_an_organization_debtor_is_listed_with_its_credit_code_and_representative(
    registry: Registry, court: CourtHandle
) -> None:
    body = organization_listing(registry, court)
    with registry.http(court.api_key) as http:
        listing_id = publish(http, registry.envelope(court, body))
        listing = http.get(f"/v1/listings/{listing_id}").json()
    assert listing["debtor"] == {
        "kind": "organization",
        "name": body["debtor"]["name"],
        "credit_code": body["debtor"]["credit_code"],
        "legal_representative": body["debtor"]["legal_representative"],
    }


def test_another_courts_client_gets_404_for_a_listing(registry: Registry, court: CourtHandle) -> None:
    other = shanghai(registry)
    with registry.http(court.api_key) as http:
        listing_id = publish(http, registry.envelope(court, registry.person_listing(court)))
    with registry.http(other.api_key) as http:
        response = http.get(f"/v1/listings/{listing_id}")
        unknown = http.get("/v1/listings/01JAAAAAAAAAAAAAAAAAAAAAAA")
    problem = assert_problem(response, 404, "listing_not_found")
    # The same answer as for an id that does not exist: no hint that the listing is there.
    assert problem == assert_problem(unknown, 404, "listing_not_found")
    assert "id_number" not in response.text


# ---- 2. bad input ----


def test_malformed_json_is_a_400(registry: Registry, court: CourtHandle, admin: httpx.Client) -> None:
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings",
            content=b'{"listing": {"court_code": "\xe4\xba\xac0105",',
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 400, "invalid_json")
    assert head(admin) == before


@pytest.mark.parametrize(
    ("envelope", "pointer"),
    [
        pytest.param([], None, id="a-list"),
        pytest.param("listing", None, id="a-string"),
        pytest.param(None, None, id="null"),
        pytest.param({"signature": {"key_id": "ck_x", "value": "AAAA"}}, "/listing", id="no-listing"),
        pytest.param(
            {"listing": "text", "signature": {"key_id": "ck_x", "value": "AA"}},
            "/listing",
            id="listing-not-object",
        ),
    ],
)
def test_an_envelope_that_is_not_an_object_is_422_invalid_field(
    registry: Registry, court: CourtHandle, admin: httpx.Client, envelope: Any, pointer: str | None
) -> None:
    with registry.http(court.api_key) as http:
        problem = assert_rejected(registry, admin, http, envelope, 422, "invalid_field", pointer)
    assert problem.get("pointer") == pointer


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("c2lnbmF0dXJl", id="a-string"),
        pytest.param({"key_id": "ck_0123"}, id="no-value"),
        pytest.param({"key_id": 7, "value": "AAAA"}, id="key-id-not-a-string"),
    ],
)
def test_a_missing_or_malformed_signature_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client, signature: Any
) -> None:
    envelope: dict[str, Any] = {"listing": registry.person_listing(court)}
    if signature is not None:
        envelope["signature"] = signature
    with registry.http(court.api_key) as http:
        before = head(admin)
        response = http.post("/v1/listings", json=envelope)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_field", problem
    assert problem["pointer"].startswith("/signature")
    assert head(admin) == before


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        pytest.param("amount_cents", "1000000", "/listing/amount_cents", id="amount-as-string"),
        pytest.param("amount_cents", -5, "/listing/amount_cents", id="negative-amount"),
        pytest.param("term_years", "2", "/listing/term_years", id="term-as-string"),
        pytest.param("grounds", "able_but_refuses", "/listing/grounds", id="grounds-not-a-list"),
        pytest.param("grounds", [], "/listing/grounds", id="no-grounds"),
        pytest.param("obligations", 12, "/listing/obligations", id="obligations-a-number"),
    ],
)
def test_a_field_of_the_wrong_type_is_422_invalid_field_with_a_pointer(
    registry: Registry, court: CourtHandle, admin: httpx.Client, field: str, value: Any, pointer: str
) -> None:
    body = registry.person_listing(court, **{field: value})
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, registry.envelope(court, body), 422, "invalid_field", pointer)


def test_a_debtor_name_of_the_wrong_type_points_into_the_debtor(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    body["debtor"]["name"] = ["张", "伟"]
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "invalid_field",
            "/listing/debtor/name",
        )


def test_a_wrong_type_inside_a_list_points_at_the_element_as_a_json_pointer(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court, grounds=["obstructs_enforcement", 3], term_years=2)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry, admin, http, registry.envelope(court, body), 422, "invalid_field", "/listing/grounds/1"
        )


def test_an_impossible_date_is_422_invalid_date(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court, filed_on="2024-02-30")
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry, admin, http, registry.envelope(court, body), 422, "invalid_date", "/listing/filed_on"
        )


def test_an_unknown_ground_is_422_unknown_ground(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court, grounds=["obstructs_enforcement", "owes_money"], term_years=2)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry, admin, http, registry.envelope(court, body), 422, "unknown_ground", "/listing/grounds"
        )


def test_an_id_number_with_a_wrong_check_character_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    good = body["debtor"]["id_number"]
    body["debtor"]["id_number"] = good[:17] + other_character(good[17], ID_CHECK_CHARACTERS)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "invalid_id_number",
            "/listing/debtor/id_number",
        )


def test_a_credit_code_with_a_wrong_check_character_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = organization_listing(registry, court)
    good = body["debtor"]["credit_code"]
    body["debtor"]["credit_code"] = good[:17] + other_character(good[17], CREDIT_CODE_ALPHABET)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "invalid_credit_code",
            "/listing/debtor/credit_code",
        )


def test_a_minor_is_never_listed(registry: Registry, court: CourtHandle, admin: httpx.Client) -> None:
    body = registry.person_listing(court)
    listed_on = date.fromisoformat(body["listed_on"])
    # Sixteen on the listing date: born after the 17th birthday's eve, on or before the 16th.
    born_from = years_before(listed_on, 17) + timedelta(days=1)
    born_to = years_before(listed_on, 16)
    body["debtor"]["id_number"] = registry.generator.id_number(born_from, born_to)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "debtor_minor",
            "/listing/debtor/id_number",
        )


def test_a_case_number_of_another_court_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    year = date.fromisoformat(body["filed_on"]).year
    body["case_number"] = f"（{year}）京0108执4521号"
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "case_number_court_mismatch",
            "/listing/case_number",
        )


def test_a_case_number_year_other_than_the_filing_year_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    year = date.fromisoformat(body["filed_on"]).year
    body["case_number"] = f"（{year - 1}）{court.code}执4521号"
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "case_number_year_mismatch",
            "/listing/case_number",
        )


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{court}执4521号", id="no-year"),
        pytest.param("（{year}）{court}民初4521号", id="not-an-enforcement-case"),
        pytest.param("（{year}）{court}执号", id="no-sequence"),
        pytest.param("（{year}）{court}执4521", id="no-hao"),
    ],
)
def test_a_malformed_case_number_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client, template: str
) -> None:
    body = registry.person_listing(court)
    body["case_number"] = template.format(year=date.fromisoformat(body["filed_on"]).year, court=court.code)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "invalid_case_number",
            "/listing/case_number",
        )


@pytest.mark.parametrize(
    ("grounds", "term_years"),
    [
        pytest.param(["able_but_refuses"], 2, id="ground-1-alone-with-a-term"),
        pytest.param(["evades_enforcement"], None, id="ground-3-without-a-term"),
        pytest.param(["evades_enforcement"], 6, id="ground-3-beyond-five-years"),
        pytest.param(["evades_enforcement"], 1, id="ground-3-one-year"),
    ],
)
def test_a_term_against_the_spc_rules_is_422_term_invalid(
    registry: Registry, court: CourtHandle, admin: httpx.Client, grounds: list[str], term_years: int | None
) -> None:
    body = registry.person_listing(court, grounds=grounds, term_years=term_years)
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry, admin, http, registry.envelope(court, body), 422, "term_invalid", "/listing/term_years"
        )


def test_a_listing_date_in_the_future_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court, listed_on=(registry.today + timedelta(days=3)).isoformat())
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry,
            admin,
            http,
            registry.envelope(court, body),
            422,
            "date_out_of_range",
            "/listing/listed_on",
        )


def test_a_listing_for_an_unregistered_court_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    year = date.fromisoformat(body["filed_on"]).year
    body.update(court_code="沪0115", case_number=f"（{year}）沪0115执77号")
    with registry.http(registry.client("admin")) as http:
        assert_rejected(
            registry, admin, http, registry.envelope(court, body), 422, "unknown_court", "/listing/court_code"
        )


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("（２０２４）京０１０５执１２３号", id="full-width-digits"),
        pytest.param("(2024)京0105执123号", id="ascii-brackets"),
        pytest.param(" （2024） 京0105 执 123号 ", id="spaces"),
    ],
)
def test_a_case_number_in_full_width_or_ascii_form_is_normalised_and_accepted(
    registry: Registry, court: CourtHandle, written: str
) -> None:
    body = registry.person_listing(
        court,
        filed_on="2024-03-11",
        listed_on="2024-07-02",
        case_number=written,
        grounds=["able_but_refuses"],  # no fixed term, so none has ended
        term_years=None,
    )
    with registry.http(court.api_key) as http:
        listing_id = publish(http, registry.envelope(court, body))
        listing = http.get(f"/v1/listings/{listing_id}").json()
        evidence = http.get(f"/v1/listings/{listing_id}/versions/1").json()
    assert listing["case_number"] == "（2024）京0105执123号"
    # What the court signed is kept exactly as it was sent.
    assert written in evidence["signed_json"]


# ---- 3. signatures ----


def test_an_unknown_key_id_is_422_unknown_key(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    envelope = registry.envelope(court, registry.person_listing(court))
    envelope["signature"]["key_id"] = "ck_00000000deadbeef"
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 422, "unknown_key", "/signature/key_id")


def test_a_listing_signed_with_another_courts_key_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    other = shanghai(registry)
    envelope = sign_envelope("listing", registry.person_listing(court), other.private_key, other.key_id)
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 422, "key_court_mismatch", "/signature/key_id")


def test_a_revoked_key_is_422_key_revoked(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    with registry.engine.begin() as conn:
        revoke_key(conn, court.key_id, "the clerk's laptop was stolen", actor="test", now=utcnow())
    with registry.http(court.api_key) as http:
        assert_rejected(
            registry, admin, http, registry.envelope(court, body), 422, "key_revoked", "/signature/key_id"
        )


def test_an_expired_key_is_422_key_expired(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    private = Ed25519PrivateKey.generate()
    now = utcnow()
    with registry.engine.begin() as conn:
        key_id = add_key(
            conn,
            court.code,
            public_bytes(private),
            valid_from=now - timedelta(days=400),
            valid_until=now - timedelta(days=1),
            actor="test",
            now=now,
        )
    envelope = sign_envelope("listing", registry.person_listing(court), private, key_id)
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 422, "key_expired", "/signature/key_id")


def test_a_key_not_yet_valid_is_422_key_expired(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    private = Ed25519PrivateKey.generate()
    now = utcnow()
    with registry.engine.begin() as conn:
        key_id = add_key(
            conn,
            court.code,
            public_bytes(private),
            valid_from=now + timedelta(days=1),
            valid_until=None,
            actor="test",
            now=now,
        )
    envelope = sign_envelope("listing", registry.person_listing(court), private, key_id)
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 422, "key_expired", "/signature/key_id")


def test_a_listing_changed_after_signing_is_422_signature_invalid(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    envelope = copy.deepcopy(registry.envelope(court, registry.person_listing(court)))
    envelope["listing"]["debtor"]["name"] = envelope["listing"]["debtor"]["name"] + "某"
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 422, "signature_invalid", "/signature/value")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a", id="one-character"),
        pytest.param("not base64 at all!", id="punctuation"),
        pytest.param("签名签名", id="non-ascii"),
        pytest.param("AAAA", id="too-short"),
    ],
)
def test_a_signature_that_is_not_base64url_is_422_signature_invalid(
    registry: Registry, court: CourtHandle, admin: httpx.Client, value: str
) -> None:
    envelope = registry.envelope(court, registry.person_listing(court))
    envelope["signature"]["value"] = value
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 422, "signature_invalid", "/signature/value")


def test_extra_fields_are_accepted_and_covered_by_the_signature(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(
        court, clerk_note="承办人：李明", court_system={"version": "3.2", "batch": 17}
    )
    envelope = registry.envelope(court, body)
    tampered = copy.deepcopy(envelope)
    tampered["listing"]["clerk_note"] = "承办人：王芳"
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, tampered, 422, "signature_invalid", "/signature/value")
        listing_id = publish(http, envelope)
        evidence = http.get(f"/v1/listings/{listing_id}/versions/1").json()
    assert "承办人：李明" in evidence["signed_json"]
    assert '"court_system":{"batch":17,"version":"3.2"}' in evidence["signed_json"]


# ---- 4. roles ----


def test_no_authorization_is_401_with_a_challenge(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    envelope = registry.envelope(court, registry.person_listing(court))
    with registry.http() as http:
        before = head(admin)
        response = http.post("/v1/listings", json=envelope)
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].lower().startswith("bearer")
        basic = http.post("/v1/listings", json=envelope, headers={"Authorization": f"Basic {court.api_key}"})
        assert_problem(basic, 401, "unauthorized")
    assert head(admin) == before


def test_an_unknown_api_key_is_401(registry: Registry, court: CourtHandle, admin: httpx.Client) -> None:
    envelope = registry.envelope(court, registry.person_listing(court))
    with registry.http("rk_" + "x" * 43) as http:
        before = head(admin)
        response = http.post("/v1/listings", json=envelope)
    assert_problem(response, 401, "unauthorized")
    assert "www-authenticate" in response.headers
    assert head(admin) == before


@pytest.mark.parametrize("role", ["bank", "agency", "media"])
def test_other_roles_may_not_publish(
    registry: Registry, court: CourtHandle, admin: httpx.Client, role: str
) -> None:
    envelope = registry.envelope(court, registry.person_listing(court))
    with registry.http(registry.client(role)) as http:
        before = head(admin)
        response = http.post("/v1/listings", json=envelope)
        batch = http.post("/v1/listings/batch", json={"envelopes": [envelope]})
    assert_problem(response, 403, "forbidden_role")
    assert_problem(batch, 403, "forbidden_role")
    assert head(admin) == before
    assert listing_count(registry) == 0


def test_a_court_client_may_not_publish_for_another_court(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    other = shanghai(registry)
    # Properly signed by the other court: only the client's binding is wrong.
    envelope = registry.envelope(other, registry.person_listing(other))
    with registry.http(court.api_key) as http:
        assert_rejected(registry, admin, http, envelope, 403, "court_mismatch")
    with registry.http(other.api_key) as http:
        publish(http, envelope)


def test_an_admin_may_publish_for_any_court(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(court)
    listing_id = publish(admin, registry.envelope(court, body))
    listing = admin.get(f"/v1/listings/{listing_id}").json()
    assert listing["court_code"] == court.code
    assert listing["debtor"]["id_number"] == body["debtor"]["id_number"]


# ---- 5. batches ----


def test_a_large_batch_is_prepared_below_the_servers_cpu_priority(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    """A large batch is prepared (its signatures checked: seconds of CPU) in processes niced
    `REGISTRY_INGEST_NICENESS` below the server, so that a removal, a search or a bank check
    on the same cores goes first; the batch is stored all the same."""
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    if ours >= 19:
        pytest.skip("this process already runs at the lowest CPU priority: nothing to go below")
    bodies = [registry.person_listing(court) for _ in range(INLINE_LIMIT + 16)]
    assert len(publish_many(registry, court, bodies)) == len(bodies)
    lowered = min(19, ours + settings.listings.ingest_niceness)
    assert settings.listings.ingest_niceness == 10 and lowered > ours
    niced = []
    for pid in pool_workers():
        with contextlib.suppress(ProcessLookupError):
            if os.getpriority(os.PRIO_PROCESS, pid) == lowered:
                niced.append(pid)
    assert niced  # the pool starts its processes as chunks come: one, for this batch's one chunk


def test_a_mixed_batch_answers_one_result_per_envelope_in_order(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    good = [
        registry.person_listing(court),
        organization_listing(registry, court),
        registry.person_listing(court),
    ]
    unknown_ground = registry.person_listing(court, grounds=["sings_loudly"])
    tampered = copy.deepcopy(registry.envelope(court, registry.person_listing(court)))
    tampered["listing"]["debtor"]["name"] = "李" + tampered["listing"]["debtor"]["name"][1:]
    envelopes = [
        registry.envelope(court, good[0]),
        registry.envelope(court, unknown_ground),
        registry.envelope(court, good[1]),
        tampered,
        "not an envelope",
        registry.envelope(court, good[2]),
    ]
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
        assert response.status_code == 200, response.text
        answer = response.json()
        results = answer["results"]
        assert len(results) == len(envelopes)
        assert [r["status"] for r in results] == [201, 422, 201, 422, 422, 201]
        assert [r.get("outcome") for r in results] == [
            "created",
            "rejected",
            "created",
            "rejected",
            "rejected",
            "created",
        ]
        assert [r.get("problem", {}).get("code") for r in results] == [
            None,
            "unknown_ground",
            None,
            "signature_invalid",
            "invalid_field",
            None,
        ]
        assert results[1]["problem"]["pointer"] == "/listing/grounds"
        assert all("listing_id" not in r for r in results if r["status"] >= 400)
        assert answer["summary"] == {"created": 3, "unchanged": 0, "rejected": 3}
        created = [r["listing_id"] for r in results if r["status"] == 201]
        assert len(set(created)) == 3
        for listing_id, body in zip(created, good, strict=True):
            listing = http.get(f"/v1/listings/{listing_id}").json()
            assert listing["case_number"] == body["case_number"]
            assert listing["versions"][0]["submission_id"] == body["submission_id"]
    assert head(admin) == before + 3
    assert listing_count(registry) == 3


def test_a_batch_with_the_same_submission_twice_creates_once(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    envelope = registry.envelope(court, body)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": [envelope, copy.deepcopy(envelope)]})
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["status"] == 201 and first["outcome"] == "created"
    assert second == {"status": 200, "listing_id": first["listing_id"], "version": 1, "outcome": "unchanged"}
    assert response.json()["summary"] == {"created": 1, "unchanged": 1, "rejected": 0}
    assert listing_count(registry) == 1


def test_a_batch_listing_the_same_debtor_in_the_same_case_twice_rejects_the_second(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    twin = copy.deepcopy(body)
    twin["submission_id"] = body["submission_id"] + "-again"
    twin["debtor"]["id_number"] = body["debtor"]["id_number"].lower()  # the same person, written differently
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings/batch", json={"envelopes": [registry.envelope(court, b) for b in (body, twin)]}
        )
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["outcome"] == "created"
    assert second["status"] == 409 and second.get("outcome") == "rejected"
    assert second["problem"]["code"] == "already_listed"
    assert second["problem"]["listing_id"] == first["listing_id"]
    assert response.json()["summary"] == {"created": 1, "unchanged": 0, "rejected": 1}
    assert listing_count(registry) == 1


def test_a_batch_reusing_a_submission_id_for_other_content_rejects_the_second(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    other = registry.person_listing(court, submission_id=body["submission_id"])
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings/batch", json={"envelopes": [registry.envelope(court, b) for b in (body, other)]}
        )
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["outcome"] == "created"
    assert second["status"] == 409 and second["problem"]["code"] == "submission_conflict"
    assert second["problem"]["listing_id"] == first["listing_id"]
    assert listing_count(registry) == 1


def test_an_empty_batch_answers_an_empty_list(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": []})
    assert response.status_code == 200, response.text
    assert response.json() == {"summary": {"created": 0, "unchanged": 0, "rejected": 0}, "results": []}
    assert head(admin) == before


def test_a_batch_over_the_limit_is_413_and_writes_nothing(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    envelopes: list[Any] = [registry.envelope(court, registry.person_listing(court))]
    envelopes += [{}] * 10_000
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
    problem = assert_problem(response, 413, "batch_too_large")
    assert problem["limit"] == 10_000
    assert head(admin) == before
    assert listing_count(registry) == 0


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([], id="a-list"),
        pytest.param({}, id="no-envelopes"),
        pytest.param({"envelope": []}, id="misspelt"),
        pytest.param({"envelopes": {}}, id="envelopes-an-object"),
        pytest.param({"envelopes": "[]"}, id="envelopes-a-string"),
        pytest.param("envelopes", id="a-string"),
    ],
)
def test_a_batch_body_of_the_wrong_shape_is_422(
    registry: Registry, court: CourtHandle, admin: httpx.Client, payload: Any
) -> None:
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json=payload)
    assert_problem(response, 422, "invalid_field")
    assert head(admin) == before


def test_a_batch_that_is_not_json_is_400(registry: Registry, court: CourtHandle, admin: httpx.Client) -> None:
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings/batch", content=b'{"envelopes": [', headers={"content-type": "application/json"}
        )
    assert_problem(response, 400, "invalid_json")
    assert head(admin) == before


def test_an_envelope_with_an_unpaired_surrogate_is_refused_alone(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """`\\ud800` is JSON's grammar (I-JSON forbids it): its envelope is refused, the rest stored."""
    good = [json.dumps(registry.envelope(court, registry.listing(court))) for _ in range(2)]
    broken = json.dumps(registry.envelope(court, registry.listing(court))).replace(
        '"obligations": "', '"obligations": "\\ud800', 1
    )
    body = '{"envelopes": [' + ", ".join([good[0], broken, good[1]]) + "]}"
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings/batch", content=body.encode(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["created", "rejected", "created"]
    assert results[1]["problem"]["status"] in (400, 422)


def test_a_batch_naming_its_envelopes_twice_is_422_and_writes_nothing(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """The first list would be dropped unseen (a parser keeps the last)."""
    first, second = (json.dumps(registry.envelope(court, registry.listing(court))) for _ in range(2))
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post(
            "/v1/listings/batch",
            content=f'{{"envelopes": [{first}], "envelopes": [{second}]}}'.encode(),
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 422, "duplicate_member")
    assert response.json()["pointer"] == "/envelopes"
    assert head(admin) == before


def test_a_batch_larger_than_one_chunk_keeps_its_order_for_duplicates(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """501 envelopes: the 501st repeats the 1st, so it is the one answered "unchanged".

    The batch spans two worker chunks; the order shows when both workers of the pool are up,
    which is why this runs before any other batch of this module uses the pool.
    """
    with registry.http(court.api_key) as http:
        # Two chunks of rejects: a new pool starts both its workers here, before the real batch.
        warm_up = http.post("/v1/listings/batch", json={"envelopes": [{}] * 501})
    assert warm_up.status_code == 200, warm_up.text
    assert warm_up.json()["summary"] == {"created": 0, "unchanged": 0, "rejected": 501}
    bodies = [registry.listing(court) for _ in range(500)]
    envelopes = [registry.envelope(court, body) for body in bodies]
    envelopes.append(copy.deepcopy(envelopes[0]))
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["summary"] == {"created": 500, "unchanged": 1, "rejected": 0}
    first, last = answer["results"][0], answer["results"][500]
    assert (first["status"], first["outcome"]) == (201, "created")
    assert last == {"status": 200, "listing_id": first["listing_id"], "version": 1, "outcome": "unchanged"}
    assert head(admin) == before + 500


def test_a_large_batch_goes_through_the_worker_pool_and_every_listing_is_readable(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    bodies = [registry.listing(court) for _ in range(300)]
    bad = copy.deepcopy(registry.envelope(court, registry.person_listing(court)))
    bad["listing"]["debtor"]["name"] = "改过的名字"
    envelopes = [registry.envelope(court, body) for body in bodies]
    envelopes.insert(150, bad)  # a rejection from inside a worker keeps its place
    before = head(admin)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", json={"envelopes": envelopes})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["summary"] == {"created": 300, "unchanged": 0, "rejected": 1}
        results = answer["results"]
        assert len(results) == 301
        assert results[150]["problem"]["code"] == "signature_invalid"
        del results[150]
        assert all(r["status"] == 201 and r.get("outcome") == "created" for r in results)
        for result, body in zip(results, bodies, strict=True):
            read = http.get(f"/v1/listings/{result['listing_id']}")
            assert read.status_code == 200, read.text
            listing = read.json()
            assert listing["versions"][0]["submission_id"] == body["submission_id"]
            identifier = body["debtor"].get("id_number") or body["debtor"]["credit_code"]
            assert identifier in (listing["debtor"].get("id_number"), listing["debtor"].get("credit_code"))
    assert head(admin) == before + 300
    assert listing_count(registry) == 300


def test_a_pooled_batch_finds_every_courts_key_and_refuses_each_bad_key_on_its_own(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    """A worker fetches its chunk's keys in one query before preparing. Every court's key is
    found; a key id that cannot be one (U+0000, which PostgreSQL would refuse in the query,
    and over 64 characters) is refused as its envelope's field; an unknown or
    revoked key is its own envelope's problem; a revocation between batches shows in the next."""
    other = shanghai(registry)
    courts = [court, other] * 40  # 80 envelopes: over INLINE_LIMIT, so through the pool

    def batch(envelopes: list[Any]) -> list[dict[str, Any]]:
        response = admin.post("/v1/listings/batch", json={"envelopes": envelopes})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        assert len(results) == len(envelopes)
        return results

    bad_keys = ["ck_00000000deadbeef", "ck_\x00", "k" * 65]
    bad = []
    for key_id in bad_keys:
        envelope = registry.envelope(court, registry.listing(court))
        envelope["signature"]["key_id"] = key_id
        bad.append(envelope)
    good = [registry.envelope(each, registry.listing(each)) for each in courts]
    results = batch(good[:40] + bad + good[40:])
    codes = [result.get("problem", {}).get("code") for result in results]
    assert codes == [None] * 40 + ["unknown_key", "invalid_field", "invalid_field"] + [None] * 40
    assert all(result["outcome"] == "created" for result in results[:40] + results[43:])
    assert results[40]["problem"]["pointer"] == "/signature/key_id"

    with registry.engine.begin() as conn:
        revoke_key(conn, other.key_id, "the clerk's laptop was stolen", actor="test", now=utcnow())
    results = batch([registry.envelope(each, registry.listing(each)) for each in courts])
    assert [result.get("problem", {}).get("code") for result in results] == [None, "key_revoked"] * 40
    assert listing_count(registry) == 120


# ---- 6. robustness and logs ----


@contextmanager
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """INFO records of the service's loggers, including those that do not propagate to the root."""
    names = ("registry", "uvicorn", "uvicorn.error", "uvicorn.access", "litestar")
    attached = []
    for name in names:
        caplog.set_level(logging.INFO, logger=name)
        logger = logging.getLogger(name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            attached.append(logger)
    try:
        yield
    finally:
        for logger in attached:
            logger.removeHandler(caplog.handler)


def test_bad_requests_leave_the_server_serving_and_no_id_number_in_the_logs(
    registry: Registry, court: CourtHandle, admin: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[str] = []

    def person(**overrides: Any) -> dict[str, Any]:
        body = registry.person_listing(court, **overrides)
        sent.append(body["debtor"]["id_number"])
        return body

    minor = person()
    listed_on = date.fromisoformat(minor["listed_on"])
    minor["debtor"]["id_number"] = registry.generator.id_number(
        years_before(listed_on, 17) + timedelta(days=1), years_before(listed_on, 10)
    )
    sent.append(minor["debtor"]["id_number"])
    checksum = person()
    checksum["debtor"]["id_number"] = checksum["debtor"]["id_number"][:17] + other_character(
        checksum["debtor"]["id_number"][17], ID_CHECK_CHARACTERS
    )
    sent.append(checksum["debtor"]["id_number"])
    tampered = registry.envelope(court, person())
    tampered["signature"]["value"] = "A" * 86
    wrong_type = person()
    wrong_type["debtor"]["id_number"] = {"number": wrong_type["debtor"]["id_number"]}
    too_long = person()
    too_long["debtor"]["id_number"] = too_long["debtor"]["id_number"] * 3
    good = person()
    before = head(admin)

    with captured(caplog), registry.http(court.api_key) as http:
        answers = [
            http.post("/v1/listings", json=registry.envelope(court, minor)),
            http.post("/v1/listings", json=registry.envelope(court, checksum)),
            http.post("/v1/listings", json=tampered),
            http.post("/v1/listings", json=registry.envelope(court, wrong_type)),
            http.post("/v1/listings", json=registry.envelope(court, too_long)),
            http.post("/v1/listings", json=registry.envelope(court, person(grounds=["bad"]))),
            http.post(
                "/v1/listings",
                json=registry.envelope(court, person(term_years=9, grounds=["breaches_settlement"])),
            ),
            http.post(
                "/v1/listings",
                content=f'{{"listing": {{"id_number": "{good["debtor"]["id_number"]}"'.encode(),
            ),
            http.post(
                "/v1/listings/batch",
                json={"envelopes": [registry.envelope(court, person(filed_on="2024-13-01"))]},
            ),
            http.post("/v1/listings/batch", json={"envelopes": [tampered] * 70}),
        ]
        assert [a.status_code for a in answers] == [422, 422, 422, 422, 422, 422, 422, 400, 200, 200]
        assert head(admin) == before
        # Still serving: the good one goes through after all of that.
        listing_id = publish(http, registry.envelope(court, good))
        assert (
            http.get(f"/v1/listings/{listing_id}").json()["debtor"]["id_number"]
            == good["debtor"]["id_number"]
        )

    assert any(r.name == "registry.access" for r in caplog.records), "the access log was not captured"
    leaked = [number for number in set(sent) if number in caplog.text]
    assert not leaked, f"ID numbers in the logs: {leaked}"
    # Nor does a problem quote an identifier back: clients log problems too.
    assert not [number for number in set(sent) for answer in answers if number in answer.text]


# ---- 7. concurrent submissions ----


def head_waiters(registry: Registry) -> int:
    """Sessions waiting for the event-log head's row lock (not for any other lock)."""
    with registry.engine.connect() as probe:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query LIKE '%FROM log_head%FOR UPDATE%'"
        )
        return int(probe.execute(sa.text(query)).scalar_one())


def wait_for_head_waiters(registry: Registry, count: int) -> int:
    """Until `count` sessions wait for the head (at most 20 s, not a timing assertion: a
    bound on how long to wait for the queue to form); returns how many do."""
    deadline = time.monotonic() + 20
    while (waiting := head_waiters(registry)) < count and time.monotonic() < deadline:
        pass
    return waiting


def post_together(registry: Registry, api_key: str, envelopes: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST the envelopes at once, each from its own client, and return the answers in order.

    On PostgreSQL the test holds the event-log head (the row every write locks) until every
    request waits for it, so all of them have read before any commits: the interleaving that
    concurrent clients meet in production, made certain instead of left to chance. (SQLite
    writers take the database lock at BEGIN, so there the requests simply run together.)
    """

    def post(envelope: dict[str, Any]) -> httpx.Response:
        with registry.http(api_key) as http:
            return http.post("/v1/listings", json=envelope)

    postgres = registry.engine.dialect.name == "postgresql"
    with registry.engine.connect() as holder, ThreadPoolExecutor(max_workers=len(envelopes)) as pool:
        if postgres:
            holder.execute(sa.text("SELECT last_seq FROM log_head WHERE id = 1 FOR UPDATE"))
        futures = [pool.submit(post, envelope) for envelope in envelopes]
        if postgres:
            wait_for_head_waiters(registry, len(envelopes))
            holder.rollback()
        return [future.result() for future in futures]


def test_concurrent_identical_submissions_create_one_listing(registry: Registry, court: CourtHandle) -> None:
    """A court's client retrying in parallel (a timeout, a second worker): one listing, the rest 200."""
    envelope = registry.envelope(court, registry.person_listing(court))
    answers = post_together(registry, court.api_key, [copy.deepcopy(envelope) for _ in range(6)])
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len({a.json()["listing_id"] for a in answers}) == 1
    assert listing_count(registry) == 1


def test_a_removal_committed_while_a_listing_waits_for_the_log_head_is_seen_by_its_checks(
    registry: Registry, court: CourtHandle
) -> None:
    """A listing checks its debtor's earlier listings before it takes the log head. The
    creditor's removal of the debtor's listing commits after those reads, and before the
    listing gets the head. The listing must still meet the six-month bar (SPC Art. 10) that
    the removal started: its checks are read again, or a barred listing is published."""
    if registry.engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers take the database lock at BEGIN: no read can come before it")
    applied = {"initiated_by": "creditor_application"}
    body = registry.person_listing(court, creditor="北京某某建设有限公司")
    body["decision"] |= applied
    listing_id = publish_one(registry, court, body)
    other_case = registry.generator.case_number(court.code, int(body["filed_on"][:4]))
    again = dict(body, submission_id=new_submission(), case_number=other_case)
    removal = removal_body(listing_id, registry.today, reason="creditor_request")

    def list_again() -> httpx.Response:
        with registry.http(court.api_key) as http:
            return http.post("/v1/listings", json=registry.envelope(court, again))

    with registry.engine.connect() as holder, ThreadPoolExecutor(max_workers=2) as pool:
        holder.execute(sa.text("SELECT last_seq FROM log_head WHERE id = 1 FOR UPDATE"))
        removed = pool.submit(post_removal, registry, court, listing_id, removal)
        wait_for_head_waiters(registry, 1)
        listed = pool.submit(list_again)
        waiting = wait_for_head_waiters(registry, 2)
        assert waiting == 2, "the removal and the listing should both wait for the head"
        holder.rollback()
        assert removed.result().status_code == 200, removed.result().text
        answer = listed.result()
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "relisting_barred"
    assert listing_count(registry) == 1


def test_concurrent_listings_of_one_debtor_in_one_case_create_one_listing(
    registry: Registry, court: CourtHandle
) -> None:
    """Clerks list the same debtor in the same case at once: SPC Art. 10 allows one active listing."""
    body = registry.person_listing(court)
    envelopes = [
        registry.envelope(court, dict(body, submission_id=f"{body['submission_id']}-{n}")) for n in range(6)
    ]
    answers = post_together(registry, court.api_key, envelopes)
    assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"already_listed"}
    assert listing_count(registry) == 1
