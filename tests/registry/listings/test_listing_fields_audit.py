"""Listing fields as a court sees them through the live server: an old foreign permanent
residence card's birth year (SPC Art. 4: no minors), text limits after normalisation,
performance figures that contradict their status, a removal's document number, and the
codes the OpenAPI document declares for the listing endpoints."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import msgspec
import pytest
import rfc8785
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.listings.examples import LISTING, REMOVAL
from registry.listings.prepare import creditor_index_input
from registry.listings.schemas import ListingIn
from registry.problems import Problem
from tests.support.harness import CourtHandle, Registry, run_search_indexer
from tests.support.listings import post_removal, publish_one, removal_body

FDFA = "\ufdfa"  # ARABIC LIGATURE SALLALLAHOU ALAYHE WASALLAM: 18 characters under NFKC


def state(registry: Registry) -> tuple[int, int]:
    with registry.engine.connect() as conn:
        head = conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()
        listings = conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one()
    return int(head), int(listings)


def post(registry: Registry, court: CourtHandle, body: dict[str, Any]) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post("/v1/listings", json=registry.envelope(court, body))


def assert_listing_refused(
    registry: Registry, court: CourtHandle, body: dict[str, Any], code: str, pointer: str
) -> None:
    before = state(registry)
    response = post(registry, court, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["code"], problem.get("pointer")) == (code, pointer), problem
    assert state(registry) == before, "a refused listing wrote something"


def with_debtor(registry: Registry, court: CourtHandle, **debtor: str) -> dict[str, Any]:
    body = registry.person_listing(court)
    body["debtor"] = {"kind": "person", "name": body["debtor"]["name"]} | debtor
    return body


# ---- SPC Art. 4: an old residence card's two-digit birth year ----


def test_an_old_residence_card_of_a_minor_is_refused(registry: Registry, court: CourtHandle) -> None:
    """Born 2010-06-15: a minor. Read as 1910 (the century in which the holder would be of
    age), the listing was published with an age of 116."""
    body = with_debtor(registry, court, id_type="foreign_permanent_residence", id_number="USA111006151234")
    assert_listing_refused(registry, court, body, "debtor_minor", "/listing/debtor/id_number")


def test_the_contracts_example_card_is_of_age_from_the_day_after_its_18th_birthday(
    registry: Registry, court: CourtHandle
) -> None:
    """docs/court-contract.md: `USA110801011234` was born on 2008-01-01 (read against the
    listing's date, not today), so it is refused on 2026-01-01 and listed from 2026-01-02."""

    def on(day: str) -> dict[str, Any]:
        body = with_debtor(
            registry, court, id_type="foreign_permanent_residence", id_number="USA110801011234"
        )
        body |= {
            "filed_on": "2025-12-01",
            "listed_on": day,
            "grounds": ["able_but_refuses"],
            "term_years": None,
        }
        body["case_number"] = registry.generator.case_number(court.code, 2025)
        body["decision"] = body["decision"] | {"decided_on": day}
        body.pop("extension", None)
        return body

    assert_listing_refused(registry, court, on("2026-01-01"), "debtor_minor", "/listing/debtor/id_number")
    listing_id = publish_one(registry, court, on("2026-01-02"))
    with registry.http(court.api_key) as http:
        debtor = http.get(f"/v1/listings/{listing_id}").json()["debtor"]
    assert debtor["birth_date"] == "2008-01-01"


def test_an_adult_on_an_old_residence_card_is_published_with_the_right_age(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    body = with_debtor(registry, court, id_type="foreign_permanent_residence", id_number="USA116506011234")
    listing_id = publish_one(registry, court, body)
    run_search_indexer(engine)
    with registry.http() as http:
        found = http.get(
            "/v1/public/defaulters",
            params={"id_type": "foreign_permanent_residence", "id_number": "USA116506011234"},
        )
    assert found.status_code == 200, found.text
    [hit] = found.json()["hits"]
    assert hit["id"] == listing_id
    assert hit["age_at_publication"] == registry.today.year - 1965


# ---- text limits hold on the normalised text ----


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("name", FDFA * 199, "/listing/debtor/name"),  # 3,582 characters once normalised
        ("obligations", FDFA * 5000, "/listing/obligations"),  # 90,000
        ("issuer", FDFA * 12, "/listing/basis/issuer"),  # 216
    ],
)
def test_a_text_too_long_once_normalised_is_refused_as_a_long_text_is(
    registry: Registry, court: CourtHandle, field: str, value: str, pointer: str
) -> None:
    body = registry.person_listing(court)
    if field == "name":
        body["debtor"] = body["debtor"] | {"name": value}
    elif field == "issuer":
        body["basis"] = body["basis"] | {"issuer": value}
    else:
        body[field] = value
    assert_listing_refused(registry, court, body, "invalid_field", pointer)
    # Too long as sent: the same answer.
    if field == "name":
        body["debtor"] = body["debtor"] | {"name": "张" * 201}
        assert_listing_refused(registry, court, body, "invalid_field", pointer)


def test_a_text_within_its_limit_once_normalised_is_stored_normalised(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    body["debtor"] = body["debtor"] | {"name": FDFA * 11}  # 198 characters
    listing_id = publish_one(registry, court, body)
    with registry.http(court.api_key) as http:
        name = http.get(f"/v1/listings/{listing_id}").json()["debtor"]["name"]
    assert len(name) == 198 and FDFA not in name


# ---- SPC Art. 6: performance figures agree with the status ----


@pytest.mark.parametrize(
    "performance",
    [
        {"status": "partial", "performed_cents": 1_250_000, "unperformed_cents": 0},  # all performed
        {"status": "none", "unperformed_cents": 100},  # nothing performed, yet 100 fen unperformed
        {"status": "partial", "performed_cents": 0},  # nothing performed
        {"status": "partial", "unperformed_cents": 1_250_000},  # nothing performed
        {"status": "partial", "performed_cents": 1_250_000},  # all performed
    ],
)
def test_performance_figures_that_contradict_the_status_are_refused(
    registry: Registry, court: CourtHandle, performance: dict[str, Any]
) -> None:
    body = registry.person_listing(court, amount_cents=1_250_000, performance=performance)
    assert_listing_refused(registry, court, body, "performance_inconsistent", "/listing/performance")


@pytest.mark.parametrize(
    "performance",
    [
        {"status": "none"},
        {"status": "none", "performed_cents": 0, "unperformed_cents": 1_250_000},
        {"status": "partial", "performed_cents": 250_000},
        {"status": "partial", "unperformed_cents": 1_000_000},
        {"status": "partial", "performed_cents": 250_000, "unperformed_cents": 1_000_000},
    ],
)
def test_performance_figures_that_agree_with_the_status_are_kept(
    registry: Registry, court: CourtHandle, performance: dict[str, Any]
) -> None:
    body = registry.person_listing(court, amount_cents=1_250_000, performance=performance)
    listing_id = publish_one(registry, court, body)
    with registry.http(court.api_key) as http:
        kept = http.get(f"/v1/listings/{listing_id}").json()["details"]["performance"]
    assert {key: value for key, value in kept.items() if value is not None} == performance


# ---- a removal's document number ----


def test_a_removals_document_number_is_kept_as_the_listings_are(
    registry: Registry, court: CourtHandle
) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    body = removal_body(listing_id, registry.today, overrides={"basis_document": "(2026)京0105执恢12号之一"})
    assert post_removal(registry, court, listing_id, body).status_code == 200
    with registry.http(court.api_key) as http:
        removal = http.get(f"/v1/listings/{listing_id}").json()["removal"]
    assert removal["basis_document"] == "（2026）京0105执恢12号之一"


# ---- the OpenAPI document declares what the endpoints answer ----


def _codes(document: dict[str, Any], method: str, path: str, status: int) -> set[str]:
    response = document["paths"][path][method]["responses"][str(status)]
    return {
        example["value"]["code"]
        for example in response["content"]["application/problem+json"]["examples"].values()
    }


def test_the_listing_endpoints_declare_the_special_subject_and_bar_codes(server_url: str) -> None:
    document = httpx.get(f"{server_url}/schema/openapi.json").json()
    for path in ("/v1/listings", "/v1/listings/{listing_id}/amendments"):
        assert {"unknown_special_subject", "special_subject_mismatch", "term_invalid"} <= _codes(
            document, "post", path, 422
        ), path
        assert "relisting_barred" in _codes(document, "post", path, 409), path


def test_the_documented_examples_carry_genuine_signatures() -> None:
    """registry/listings/examples.py: signed by the example key (the SHA-256 of `registry api
    example`); an example edited without signing again would teach courts a bad signature."""
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"registry api example").digest())
    for envelope, name in ((LISTING, "listing"), (REMOVAL, "removal")):
        value = envelope["signature"]["value"]
        signature = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        key.public_key().verify(signature, rfc8785.dumps(envelope[name]))


def test_a_creditor_code_accepted_before_the_organisation_code_check_is_still_indexed() -> None:
    """A blind-index key rotation recomputes the creditor's index from the stored signed
    listing: a code accepted before the GB 11714 check of its characters 9-17 (the contract's
    own old example) must not stop it, while a new listing naming that code is refused."""
    old = dict(
        LISTING["listing"], creditor={"name": "北京某某建设有限公司", "credit_code": "91110105MA01C9XK31"}
    )
    listing = msgspec.convert(old, ListingIn)
    assert creditor_index_input(listing, stored=True) == "creditor:91110105MA01C9XK31"
    with pytest.raises(Problem) as refused:
        creditor_index_input(listing)
    assert (refused.value.code, refused.value.pointer) == (
        "invalid_credit_code",
        "/listing/creditor/credit_code",
    )
