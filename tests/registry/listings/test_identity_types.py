"""Identity coverage (SPC Art. 6, issue 14) through the live server: every person and
organisation identity type is listed, read back by the court, found by exact number in
public search, bank checks and watchlists, with the public form of its type; both forms of a
resident ID number (15 and 18 digits) are one person."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from stdnum.cn import uscc

from registry.identity.identifiers import id_check_character
from registry.identity.types import organization_code_check
from tests.support.checks import bank
from tests.support.harness import CourtHandle, Registry, run_search_indexer
from tests.support.listings import publish_one

FPR_BODY = "911156" + "19750615" + "001"
FPR_NEW = FPR_BODY + id_check_character(FPR_BODY)
ORG_CODE = "MA01C9XK" + organization_code_check("MA01C9XK")

PERSONS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    # (debtor fields, lookup fields, public form)
    ({"id_type": "hk_macao_travel_permit", "id_number": "H12345678"},
     {"id_type": "hk_macao_travel_permit", "id_number": "h1234 5678"}, "H********"),
    ({"id_type": "taiwan_travel_permit", "id_number": "87654321"},
     {"id_type": "taiwan_travel_permit", "id_number": "87654321"}, "********"),
    ({"id_type": "foreign_permanent_residence", "id_number": FPR_NEW},
     {"id_type": "foreign_permanent_residence", "id_number": FPR_NEW}, "9**156" + "*" * 12),
    ({"id_type": "foreign_permanent_residence", "id_number": "USA116506011234"},
     {"id_type": "foreign_permanent_residence", "id_number": "usa116506011234"}, "USA" + "*" * 12),
    ({"id_type": "passport", "id_number": "E1234567", "nationality": "CAN"},
     {"id_type": "passport", "id_number": "e1234567", "nationality": "can"}, "CAN *********"),
]  # fmt: skip
ORGANIZATIONS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    ({"organization_code": ORG_CODE[:8] + "-" + ORG_CODE[8]}, {"organization_code": ORG_CODE},
     ORG_CODE[:8] + "-" + ORG_CODE[8]),
    ({"registration": {"country": "GBR", "number": "SC123456"}},
     {"registration": {"country": "gbr", "number": "sc123456"}}, "GBR SC123456"),
]  # fmt: skip


def _query(lookup: dict[str, Any]) -> dict[str, str]:
    if "registration" in lookup:
        return {
            "registration_country": lookup["registration"]["country"],
            "registration_number": lookup["registration"]["number"],
        }
    return dict(lookup)


def _listed(registry: Registry, court: CourtHandle, debtor: dict[str, Any], kind: str) -> str:
    while True:
        body = registry.listing(court)
        if body["debtor"]["kind"] == kind:
            break
    base = {"kind": kind, "name": body["debtor"]["name"]}
    if kind == "organization":
        base["legal_representative"] = body["debtor"]["legal_representative"]
    body["debtor"] = base | debtor
    return publish_one(registry, court, body)


@pytest.mark.parametrize(("debtor", "lookup", "public"), PERSONS + ORGANIZATIONS)
def test_each_identity_type_is_listed_read_back_and_found_by_its_exact_number(
    registry: Registry,
    court: CourtHandle,
    engine: sa.Engine,
    admin: Any,
    debtor: dict[str, Any],
    lookup: dict[str, Any],
    public: str,
) -> None:
    kind = "person" if "id_number" in debtor else "organization"
    listing_id = _listed(registry, court, debtor, kind)
    with registry.http(court.api_key) as http:
        read = http.get(f"/v1/listings/{listing_id}").json()["debtor"]
    for key, value in debtor.items():
        if isinstance(value, str):
            assert read[key].replace("-", "") == value.replace("-", ""), (key, read)
    run_search_indexer(engine)
    with registry.http() as http:
        found = http.get("/v1/public/defaulters", params=_query(lookup))
    assert found.status_code == 200, found.text
    [hit] = found.json()["hits"]
    assert hit["id"] == listing_id and hit["identifier_masked"] == public
    assert hit["id_type"] == debtor.get("id_type") or ("organization_code" if "organization_code" in debtor
                                                        else "registration")  # fmt: skip
    _, bank_http = bank(registry)
    with bank_http:
        checked = bank_http.post(
            "/v1/checks", json={"subjects": [lookup], "purpose": "loan_application", "reference": "r"}
        )
        assert checked.status_code == 200, checked.text
        [result] = checked.json()["results"]
        assert result["listed"] is True and result["identifier_masked"] == public
        assert result["listings"][0]["listing_id"] == listing_id
        watched = bank_http.post("/v1/watchlist/subjects", json={"subjects": [lookup]})
        assert watched.json()["results"][0]["status"] == "added", watched.text


def test_the_same_number_under_another_type_is_another_identity(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    _listed(registry, court, {"id_type": "taiwan_travel_permit", "id_number": "12345678"}, "person")
    run_search_indexer(engine)
    with registry.http() as http:
        other = http.get(
            "/v1/public/defaulters", params={"id_type": "hk_macao_travel_permit", "id_number": "H12345678"}
        )
        same = http.get(
            "/v1/public/defaulters", params={"id_type": "taiwan_travel_permit", "id_number": "12345678"}
        )
    assert other.json()["hits"] == [] and len(same.json()["hits"]) == 1


def test_an_old_15_digit_number_finds_the_same_person(
    registry: Registry, court: CourtHandle, engine: sa.Engine
) -> None:
    body = registry.person_listing(court)
    number = body["debtor"]["id_number"]
    if number[6:8] != "19":
        pytest.skip("15-digit numbers were issued to people born in the 1900s")
    old = number[:6] + number[8:17]
    body["debtor"] = {**body["debtor"], "id_number": old}
    listing_id = publish_one(registry, court, body)
    run_search_indexer(engine)
    with registry.http() as http:
        for value in (number, old):
            hits = http.get("/v1/public/defaulters", params={"id_number": value}).json()["hits"]
            assert [h["id"] for h in hits] == [listing_id]
    with registry.http(court.api_key) as http:
        assert http.get(f"/v1/listings/{listing_id}").json()["debtor"]["id_number"] == number


@pytest.mark.parametrize(
    ("debtor", "code", "pointer"),
    [
        ({"id_type": "visa", "id_number": "E1234567"}, "unknown_id_type", "/listing/debtor/id_type"),
        ({"id_type": "passport", "id_number": "E1234567"}, "invalid_nationality",
         "/listing/debtor/nationality"),
        ({"id_type": "passport", "id_number": "E1234567", "nationality": "XXX"}, "invalid_nationality",
         "/listing/debtor/nationality"),
        ({"id_type": "taiwan_travel_permit", "id_number": "1234"}, "invalid_id_number",
         "/listing/debtor/id_number"),
        ({"credit_code": "91110000600037341L", "organization_code": ORG_CODE}, "organization_identifier",
         "/listing/debtor"),
        ({}, "organization_identifier", "/listing/debtor"),
        ({"organization_code": ORG_CODE[:8] + "Y"}, "invalid_organization_code",
         "/listing/debtor/organization_code"),
        ({"registration": {"country": "UK", "number": "1"}}, "invalid_registration_country",
         "/listing/debtor/registration/country"),
    ],
)  # fmt: skip
def test_a_bad_identity_is_refused_with_its_code_and_pointer(
    registry: Registry, court: CourtHandle, debtor: dict[str, Any], code: str, pointer: str
) -> None:
    kind = "person" if "id_number" in debtor else "organization"
    while True:
        body = registry.listing(court)
        if body["debtor"]["kind"] == kind:
            break
    base = {"kind": kind, "name": body["debtor"]["name"]}
    if kind == "organization":
        base["legal_representative"] = "王建国"
    body["debtor"] = base | debtor
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, body))
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["pointer"]) == (code, pointer)


def _all_digit_credit_code() -> str:
    """A valid credit code made of digits only, as many are: shaped like an ID number too."""
    for serial in range(10, 100):
        organisation = f"600037{serial}"
        body = "91110000" + organisation + organization_code_check(organisation)
        check = uscc.calc_check_digit(body)
        if all(char in "0123456789" for char in body + check):
            return body + check
    raise AssertionError("no all-digit credit code in the range")


@pytest.mark.parametrize(
    ("debtor", "typed", "public", "kind"),
    [
        ({"id_type": "hk_macao_travel_permit", "id_number": "M1234567890"}, "m1234-567890", "M**********",
         "person"),
        ({"id_type": "foreign_permanent_residence", "id_number": FPR_NEW}, FPR_NEW, "9**156" + "*" * 12,
         "person"),
        ({"id_type": "foreign_permanent_residence", "id_number": "USA116506011234"}, "usa116506011234",
         "USA" + "*" * 12, "person"),
        ({"credit_code": _all_digit_credit_code()}, _all_digit_credit_code(), _all_digit_credit_code(),
         "organization"),
    ],
)  # fmt: skip
def test_a_number_of_any_recognisable_type_typed_into_q_finds_its_holder(
    registry: Registry,
    court: CourtHandle,
    engine: sa.Engine,
    debtor: dict[str, Any],
    typed: str,
    public: str,
    kind: str,
) -> None:
    """The public search's one field (the JSON API's `q`, the web page's box) recognises a
    Hong Kong or Macao permit, both forms of a foreign permanent residence ID and a credit
    code of digits only, each looked up exactly under its own type."""
    listing_id = _listed(registry, court, debtor, kind)
    run_search_indexer(engine)
    with registry.http() as http:
        found = http.get("/v1/public/defaulters", params={"q": typed})
        assert found.status_code == 200, found.text
        assert [(h["id"], h["identifier_masked"]) for h in found.json()["hits"]] == [(listing_id, public)]
        web = http.get("/", params={"q": typed})
        assert web.status_code == 200 and f"/defaulters/{listing_id}" in web.text
        # A permit of another holder is looked up, not searched as a name: nothing found.
        other = http.get("/v1/public/defaulters", params={"q": "H87654321"})
        assert other.status_code == 200 and other.json()["hits"] == []
