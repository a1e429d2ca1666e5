"""Poison text in every field: NUL, a C0 control and a bidi override (U+202E) in each text
field of a listing, a removal and the other bodies, and in path ids, are refused with a 4xx
that points at the field, and nothing is written, on SQLite and on PostgreSQL alike (where
U+0000 once answered 500 on one and 201 on the other): one check (`registry.text`) before
any query."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.identity.signing import sign_envelope
from tests.support.harness import CourtHandle, Registry
from tests.support.listings import publish_one, removal_body

POISONS = ("\x00", "\x01", "\u202e")
LISTING_FIELDS = (
    "/listing/court_code",
    "/listing/case_number",
    "/listing/basis/document_number",
    "/listing/basis/issuer",
    "/listing/debtor/name",
    "/listing/debtor/id_number",
    "/listing/obligations",
    "/listing/submission_id",
    "/listing/creditor",
    "/listing/decision/document_number",
    "/signature/key_id",
)
REMOVAL_FIELDS = (
    "/removal/listing_id",
    "/removal/reason",
    "/removal/basis_document",
    "/signature/key_id",
)


def state(registry: Registry) -> tuple[int, int, int]:
    with registry.engine.connect() as conn:
        return (
            int(conn.execute(sa.text("SELECT last_seq FROM log_head")).scalar_one()),
            int(conn.execute(sa.text("SELECT count(*) FROM listings")).scalar_one()),
            int(conn.execute(sa.text("SELECT count(*) FROM removals")).scalar_one()),
        )


def poisoned(envelope: dict[str, Any], pointer: str, poison: str) -> dict[str, Any]:
    """The envelope with `poison` inside the text at `pointer` (the signature left as it was:
    the text check comes first)."""
    copy = json.loads(json.dumps(envelope))
    *parents, last = pointer.strip("/").split("/")
    target = copy
    for step in parents:
        target = target[step]
    value = target.get(last) or "文本"
    target[last] = value[:2] + poison + value[2:]
    return copy


def assert_refused(registry: Registry, response: httpx.Response, before: Any, pointer: str) -> None:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "invalid_field" and problem["pointer"] == pointer, problem
    assert state(registry) == before


@pytest.mark.parametrize("poison", POISONS, ids=["nul", "soh", "rlo"])
@pytest.mark.parametrize("pointer", LISTING_FIELDS)
def test_poison_in_a_listing_field_is_refused_at_that_field(
    registry: Registry, court: CourtHandle, pointer: str, poison: str
) -> None:
    body = registry.person_listing(court, creditor="北京某某建设有限公司")
    envelope = poisoned(sign_envelope("listing", body, court.private_key, court.key_id), pointer, poison)
    before = state(registry)
    with registry.http(court.api_key) as http:
        single = http.post("/v1/listings", json=envelope)
        batch = http.post("/v1/listings/batch", json={"envelopes": [envelope]})
    assert_refused(registry, single, before, pointer)
    # In a batch, the item's own result carries the same problem.
    assert batch.status_code == 200, batch.text
    [result] = batch.json()["results"]
    assert (result["outcome"], result["problem"]["pointer"]) == ("rejected", pointer)
    assert state(registry) == before


@pytest.mark.parametrize("poison", POISONS, ids=["nul", "soh", "rlo"])
@pytest.mark.parametrize("pointer", REMOVAL_FIELDS)
def test_poison_in_a_removal_field_is_refused_at_that_field(
    registry: Registry, court: CourtHandle, pointer: str, poison: str
) -> None:
    listing_id = publish_one(registry, court, registry.person_listing(court))
    removal = sign_envelope(
        "removal", removal_body(listing_id, registry.today), court.private_key, court.key_id
    )
    before = state(registry)
    with registry.http(court.api_key) as http:
        response = http.post(f"/v1/listings/{listing_id}/removal", json=poisoned(removal, pointer, poison))
    assert_refused(registry, response, before, pointer)


@pytest.mark.parametrize("poison", POISONS, ids=["nul", "soh", "rlo"])
def test_poison_in_other_bodies_is_refused_at_the_field(
    registry: Registry, admin: httpx.Client, poison: str
) -> None:
    bank = registry.client("bank")
    before = state(registry)
    with registry.http(bank) as http:
        # A subject's own text fails that subject alone (docs/bank-checks.md), never the batch.
        check = http.post(
            "/v1/checks",
            json={
                "subjects": [
                    {"id_number": "1101051949" + poison + "1231002X"},
                    {"id_number": "11010519491231002X"},
                ],
                "purpose": "loan_application",
                "reference": "r",
            },
        )
        assert check.status_code == 200, check.text
        refused, answered = check.json()["results"]
        assert refused["error"]["code"] == "invalid_id_number" and "U+" in refused["error"]["detail"]
        assert poison not in refused["error"]["detail"] and answered["listed"] is False
        reference = http.post(
            "/v1/checks",
            json={
                "subjects": [{"id_number": "11010519491231002X"}],
                "purpose": "loan",
                "reference": "r" + poison,
            },
        )
        assert reference.status_code == 422 and reference.json()["pointer"] == "/reference", reference.text
    subscription = admin.post(
        "/v1/sync/subscriptions", json={"client_id": "ac" + poison + "x", "profile": "public", "mode": "pull"}
    )
    assert subscription.status_code == 422 and subscription.json()["pointer"] == "/client_id", (
        subscription.text
    )
    assert state(registry) == before


@pytest.mark.parametrize("poison", ["%00", "%01", "%E2%80%AE"], ids=["nul", "soh", "rlo"])
@pytest.mark.parametrize(
    "path", ["/v1/listings/01J{}X", "/v1/listings/01J{}X/versions/1", "/v1/sync/subscriptions/s{}x"]
)
def test_poison_in_a_path_id_is_400_before_any_query(admin: httpx.Client, path: str, poison: str) -> None:
    response = admin.get(path.format(poison))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"


def test_a_line_feed_is_kept_in_obligations_and_refused_in_a_name(
    registry: Registry, court: CourtHandle
) -> None:
    body = registry.person_listing(court)
    body["obligations"] = "一、支付货款。\n二、支付利息。"
    with registry.http(court.api_key) as http:
        assert http.post("/v1/listings", json=registry.envelope(court, body)).status_code == 201
    named = registry.person_listing(court)
    named["debtor"] = {**named["debtor"], "name": "张\n三"}
    before = state(registry)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, named))
    assert_refused(registry, response, before, "/listing/debtor/name")
