"""Input at the edges of what the storage types hold: refused with a 4xx, never a 500."""

from __future__ import annotations

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
    body = '{"envelopes": [' + "[" * 5000 + "]" * 5000 + "]}"
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"


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
