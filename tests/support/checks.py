"""A bank client and a listed person, for the bank-check and watchlist tests."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from registry.clients.services import create_client
from registry.timeutil import utcnow
from tests.support.harness import CourtHandle, Registry


def bank(registry: Registry, name: str = "Bank of Test") -> tuple[str, httpx.Client]:
    """A new `bank` client: its id and an HTTP client that sends its key."""
    with registry.engine.begin() as conn:
        client_id, api_key = create_client(conn, name, "bank", None, actor="test", now=utcnow())
    return client_id, registry.http(api_key)


def publish_person(registry: Registry, court: CourtHandle, **overrides: Any) -> tuple[str, dict[str, Any]]:
    """A person listed by the court: the listing id and the body the court signed."""
    body = registry.person_listing(court, **overrides)
    with registry.http(court.api_key) as http:
        response = http.post("/v1/listings", json=registry.envelope(court, body))
    assert response.status_code == 201, response.text
    return str(response.json()["listing_id"]), body


def unlisted_id(registry: Registry) -> str:
    return registry.generator.id_number(date(1960, 1, 1), date(1990, 1, 1))
