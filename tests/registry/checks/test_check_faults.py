"""The bank check under load as the service is deployed (background jobs on)."""

from __future__ import annotations

import asyncio
import time

import httpx
import sqlalchemy as sa

from registry.settings import Settings
from service.app import create_app
from tests.support.checks import bank, unlisted_id
from tests.support.harness import Registry, serve_app


def test_concurrent_checks_with_the_jobs_on_are_all_answered(
    registry: Registry, settings: Settings, engine: sa.Engine
) -> None:
    """32 checks at a time for 4 s on a server running its background jobs: every one is
    answered. The query log's commit once waited for the write lock on the event loop, which
    the log readers' transactions need to finish: the server hung until restarted."""
    _, client = bank(registry)
    key = client.headers["authorization"]
    client.close()
    subject = {"id_number": unlisted_id(registry)}
    body = {"subjects": [subject], "purpose": "loan_application", "reference": "load"}
    app = create_app(settings.override(checks={"rate_per_second": 100_000}), run_scheduler=True)

    async def load(url: str) -> list[int]:
        statuses: list[int] = []
        stop = time.monotonic() + 4

        async def one_client(http: httpx.AsyncClient) -> None:
            while time.monotonic() < stop:
                statuses.append((await http.post("/v1/checks", json=body)).status_code)

        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": key}, timeout=10, limits=limits
        ) as http:
            await asyncio.gather(*(one_client(http) for _ in range(32)))
        return statuses

    with serve_app(app) as url:
        statuses = asyncio.run(load(url))
        # And the server still answers afterwards.
        with httpx.Client(base_url=url, headers={"Authorization": key}, timeout=10) as http:
            assert http.post("/v1/checks", json=body).status_code == 200
    assert len(statuses) > 100
    assert set(statuses) == {200}
    with engine.connect() as conn:
        logged = conn.execute(sa.text("SELECT count(*) FROM check_log")).scalar_one()
    assert logged == len(statuses) + 1
