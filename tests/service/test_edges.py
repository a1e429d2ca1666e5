"""Input at the edges of what the storage types hold: refused with a 4xx, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.harness import CourtHandle, Registry


@pytest.mark.parametrize("depth", [200, 900, 5000])
def test_deeply_nested_bodies_are_refused_cleanly(registry: Registry, court: CourtHandle, depth: int) -> None:
    # A float sends canonicalisation to the recursive reference implementation.
    nested = "[" * depth + "1.5" + "]" * depth
    body = '{"listing": {"deep": ' + nested + '}, "signature": {"key_id": "ck_x", "value": "AA"}}'
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", content=body, headers={"Content-Type": "application/json"})
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["code"] in {"invalid_json", "invalid_field"}
        assert http.get("/v1/courts").status_code == 200  # still serving


@pytest.mark.parametrize("after", [str(2**63), str(10**30)])
def test_event_cursors_beyond_the_log_position_type_are_400(admin: httpx.Client, after: str) -> None:
    response = admin.get("/v1/events", params={"after": after})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_parameter"


def test_a_deeply_nested_batch_is_400(registry: Registry, court: CourtHandle) -> None:
    body = "[" * 5000 + "]" * 5000
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, '{"a":' * 5000 + '"]}"' + "}" * 5000])
def test_an_envelope_nested_past_the_parsers_stack_is_refused_alone(
    registry: Registry, court: CourtHandle, nested: str
) -> None:
    good = json.dumps(registry.envelope(court, registry.person_listing(court)))
    body = '{"envelopes": [' + good + ", " + nested + ", " + good + "]}"  # the same envelope twice
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["created", "rejected", "unchanged"]
    assert results[1]["problem"]["code"] == "invalid_json"


def test_the_largest_valid_cursor_is_simply_past_the_end(admin: httpx.Client) -> None:
    response = admin.get("/v1/events", params={"after": str(2**63 - 1)})
    assert response.status_code == 200
    assert response.json()["events"] == []


@pytest.mark.parametrize("version", [0, 2**31, 10**20])
def test_versions_outside_the_column_range_are_404(
    registry: Registry, court: CourtHandle, version: int
) -> None:
    body = registry.person_listing(court)
    with registry.http(court.api_key) as http:
        listing_id = http.post("/v1/listings", json=registry.envelope(court, body)).json()["listing_id"]
        response = http.get(f"/v1/listings/{listing_id}/versions/{version}")
    assert response.status_code == 404
    assert response.json()["code"] == "version_not_found"


# PostgreSQL text cannot hold U+0000: each of these reached a query, and answered 500 there.
@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("admin", "GET", "/v1/listings/01JQ8W3C4X2M5V7B9N0P1R3S5%00"),
        ("admin", "GET", "/v1/listings/a%00/versions/1"),
        ("admin", "GET", "/v1/admin/banks/cl_%00/query-log"),
        ("admin", "GET", "/v1/sync/subscriptions/sub_%00"),
        ("agency", "GET", "/v1/sync/sub_%00/events"),
        ("agency", "GET", "/v1/sync/sub_x/snapshot?after=%00"),
        ("agency", "GET", "/v1/notices/nt_%00"),
        (None, "GET", "/v1/log/entries/a%00"),
        (None, "GET", "/v1/public/defaulters/a%00"),
    ],
)
def test_a_nul_in_an_id_or_parameter_is_400_invalid_parameter(
    registry: Registry, role: str | None, method: str, path: str
) -> None:
    with registry.http(registry.client(role) if role else None) as http:
        response = http.request(method, path)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_parameter"


def test_a_nul_in_a_feed_filter_is_400_unknown_court(registry: Registry) -> None:
    with registry.http() as http:
        response = http.get("/feeds/atom.xml", params={"court": "京0105\x00"})
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_court"


@pytest.mark.parametrize(
    ("role", "path", "body", "pointer"),
    [
        (
            "bank",
            "/v1/checks",
            {"subjects": [{"id_number": "11010519491231002X"}], "purpose": "loan_application",
             "reference": "LA\x00"},
            "/reference",
        ),
        ("bank", "/v1/watchlist/subjects", {"subjects": [{"credit_code": "x", "reference": "\x00"}]},
         "/subjects/0/reference"),
        ("admin", "/v1/sync/subscriptions", {"client_id": "cl_\x00", "profile": "public", "mode": "pull"},
         "/client_id"),
        ("agency", "/v1/notices/nt_x/objection", {"text": "异议\x00"}, "/text"),
    ],
)  # fmt: skip
def test_a_nul_in_a_body_is_422_invalid_field_at_the_field(
    registry: Registry, role: str, path: str, body: dict[str, Any], pointer: str
) -> None:
    with registry.http(registry.client(role)) as http:
        response = http.post(path, json=body)
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["pointer"]) == ("invalid_field", pointer)


def test_a_nul_in_a_signed_envelope_refuses_that_envelope_only(
    registry: Registry, court: CourtHandle
) -> None:
    good = registry.envelope(court, registry.person_listing(court))
    key_nul = registry.envelope(court, registry.person_listing(court))
    key_nul["signature"]["key_id"] += "\x00"
    submission_nul = registry.envelope(court, registry.person_listing(court, submission_id="s\x00"))
    with registry.http(court.api_key) as http:
        single = http.post("/v1/listings", json=submission_nul)
        batch = http.post("/v1/listings/batch", json={"envelopes": [key_nul, good, submission_nul]})
    assert single.status_code == 422, single.text
    assert (single.json()["code"], single.json()["pointer"]) == ("invalid_field", "/listing/submission_id")
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [422, 201, 422]
    assert results[0]["problem"]["pointer"] == "/signature/key_id"
