from __future__ import annotations

from tests.support.harness import CourtHandle, Registry


def test_court_publishes_a_signed_listing_and_reads_it_back(registry: Registry, court: CourtHandle) -> None:
    body = registry.person_listing(court)
    with registry.http(court.api_key) as http:
        created = http.post("/v1/listings", json=registry.envelope(court, body))
        assert created.status_code == 201, created.text
        listing_id = created.json()["listing_id"]
        again = http.post("/v1/listings", json=registry.envelope(court, body))
        assert again.status_code == 200 and again.json()["listing_id"] == listing_id
        read = http.get(f"/v1/listings/{listing_id}").json()
    assert read["debtor"]["id_number"] == body["debtor"]["id_number"]
    assert read["status"] == "active" and read["version"] == 1
