"""Special subjects (Opinion Art. 2, 4): a court may mark its debtor as a party member, civil
servant, deputy, state organ ...; the mark is signed with the listing, fits the debtor's
kind, never reaches the public entry, and moves with an amendment."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from tests.support.harness import CourtHandle, Registry, run_search_indexer
from tests.support.listings import amended_body, organization_named, post_amendment, publish_one


def _post(registry: Registry, court: CourtHandle, body: dict[str, object]) -> httpx.Response:
    with registry.http(court.api_key) as http:
        return http.post("/v1/listings", json=registry.envelope(court, body))


def test_a_special_subject_is_stored_read_back_and_amended(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    body = registry.person_listing(
        court, special_subject={"category": "civil_servant", "employer": "某某市财政局"}
    )
    listing_id = publish_one(registry, court, body)
    read = admin.get(f"/v1/listings/{listing_id}").json()
    assert read["details"]["special_subject"] == {"category": "civil_servant", "employer": "某某市财政局"}
    with registry.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT special_subject FROM listings WHERE id = :i"), {"i": listing_id}
        )
        assert stored.scalar() == "civil_servant"
    amended = amended_body(body) | {"special_subject": {"category": "npc_deputy"}}
    assert post_amendment(registry, court, listing_id, amended).status_code == 200
    assert admin.get(f"/v1/listings/{listing_id}").json()["details"]["special_subject"] == {
        "category": "npc_deputy",
        "employer": None,
    }
    without = amended_body(body)
    without.pop("special_subject")
    assert post_amendment(registry, court, listing_id, without).status_code == 200
    assert "special_subject" not in admin.get(f"/v1/listings/{listing_id}").json()["details"]
    with registry.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT special_subject FROM listings WHERE id = :i"), {"i": listing_id}
        )
        assert stored.scalar() is None


def test_an_organisation_may_be_a_state_owned_enterprise(registry: Registry, court: CourtHandle) -> None:
    body = organization_named(registry, court, "某某国有资产经营有限公司")
    body["special_subject"] = {"category": "state_owned_enterprise", "employer": "某某市国资委"}
    assert _post(registry, court, body).status_code == 201


@pytest.mark.parametrize(
    ("special", "person", "code", "pointer"),
    [
        ({"category": "emperor"}, True, "unknown_special_subject", "/listing/special_subject/category"),
        ({"category": "state_organ"}, True, "special_subject_mismatch", "/listing/special_subject/category"),
        (
            {"category": "civil_servant"},
            False,
            "special_subject_mismatch",
            "/listing/special_subject/category",
        ),
        (
            {"category": "party_member", "employer": "某某\u202e局"},
            True,
            None,
            "/listing/special_subject/employer",
        ),
    ],
)
def test_a_special_subject_that_does_not_fit_is_refused(
    registry: Registry,
    court: CourtHandle,
    special: dict[str, str],
    person: bool,
    code: str | None,
    pointer: str,
) -> None:
    body = registry.person_listing(court) if person else organization_named(registry, court, "某某有限公司")
    body["special_subject"] = special
    response = _post(registry, court, body)
    assert response.status_code in (400, 422), response.text
    problem = response.json()
    assert problem["pointer"] == pointer
    if code is not None:
        assert problem["code"] == code


def test_the_public_entry_never_shows_the_mark(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(
        court, special_subject={"category": "party_member", "employer": "某某县委组织部"}
    )
    publish_one(registry, court, body)
    run_search_indexer(registry.engine)
    with registry.http() as anyone:
        found = anyone.get("/v1/public/defaulters", params={"q": body["debtor"]["name"]}).text
    assert body["debtor"]["name"] in found
    assert "party_member" not in found and "组织部" not in found
