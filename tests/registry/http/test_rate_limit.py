"""The public rate limit, on real servers of its own with small limits, over real sockets.

Clients are told apart by their address: each test client binds its own loopback source
address (127.0.0.2, 127.0.0.3, ...), so the server sees distinct peers exactly as it would
distinct visitors.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar, Request
from litestar.stores.memory import MemoryStore

from registry.http.ratelimit import STORE, client_key
from registry.settings import ServerSettings, Settings
from service.app import create_app
from tests.support.harness import serve_app

_addresses = itertools.count(2)


def limited_app(settings: Settings, rate_limit: str) -> Litestar:
    return create_app(settings.override(server={"public_rate_limit": rate_limit}), run_scheduler=False)


@contextmanager
def serve(settings: Settings, rate_limit: str, app: Litestar | None = None) -> Iterator[str]:
    """A server of its own for one test, like the session server but with `rate_limit`."""
    with serve_app(app or limited_app(settings, rate_limit)) as url:
        yield url


def visitor(url: str, **headers: str) -> httpx.Client:
    """A client with a loopback source address no other client in this run uses."""
    address = f"127.0.0.{next(_addresses)}"
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, headers=headers, timeout=30)


@pytest.fixture
def limited(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    with serve(settings, "3/minute") as url:
        yield url


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_a_client_over_the_limit_gets_a_429_problem_with_retry_after(limited: str) -> None:
    with visitor(limited, accept="application/json") as client:
        for _ in range(3):
            assert client.get("/").status_code == 200
        refused = client.get("/", params={"q": "张伟"})
    assert refused.status_code == 429
    body = _problem(refused)
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert body["retry_after"] == retry_after
    assert refused.headers["RateLimit-Remaining"] == "0"


def test_the_json_api_and_the_page_share_one_budget(limited: str) -> None:
    with visitor(limited) as client:
        assert client.get("/v1/public/defaulters", params={"q": "张伟"}).status_code == 200
        assert client.get("/", params={"q": "张伟"}).status_code == 200
        assert client.get("/v1/public/defaulters/01J0000000000000000000NONE").status_code == 404
        refused = client.get("/v1/public/defaulters", params={"q": "张伟"})
    assert refused.status_code == 429
    assert _problem(refused)["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


def test_the_limit_is_per_client_address(limited: str) -> None:
    with visitor(limited) as first, visitor(limited) as second:
        for _ in range(3):
            assert first.get("/").status_code == 200
        assert first.get("/").status_code == 429
        # Another address has its own budget, untouched by the first one's.
        assert [second.get("/").status_code for _ in range(3)] == [200, 200, 200]
        assert second.get("/").status_code == 429


def test_the_registry_api_and_static_files_are_not_limited(limited: str) -> None:
    with visitor(limited) as client:
        for _ in range(3):
            client.get("/")
        assert client.get("/").status_code == 429
        # Only the public router is limited: health checks, the court list, the stylesheet
        # and the authenticated API go on being served to the same address.
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/courts").status_code == 200
        assert client.get("/static/public/public.css").status_code == 200
        assert client.get("/v1/events").status_code == 401


def test_a_browser_gets_the_reason_in_chinese(limited: str) -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    with visitor(limited, accept=accept) as client:
        for _ in range(3):
            client.get("/")
        refused = client.get("/")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "查询过于频繁" in refused.text
    assert f"{refused.headers['Retry-After']} 秒后再试" in refused.text


@pytest.mark.slow
def test_the_window_ends_and_the_client_is_served_again(settings: Settings, engine: sa.Engine) -> None:
    with serve(settings, "1/second") as url, visitor(url, accept="application/json") as client:
        # The window is a whole clock second: a burst meets the refusal within it.
        responses = (client.get("/") for _ in range(20))
        refused = next(r for r in responses if r.status_code == 429)
        time.sleep(int(refused.headers["Retry-After"]))
        assert client.get("/").status_code == 200


@pytest.mark.slow
def test_counts_of_clients_that_do_not_return_are_swept(settings: Settings, engine: sa.Engine) -> None:
    app = limited_app(settings, "5/second")
    with serve(settings, "5/second", app) as url:
        for _ in range(3):
            with visitor(url) as client:
                assert client.get("/").status_code == 200
        store = app.stores.get(STORE)
        assert isinstance(store, MemoryStore)
        # MemoryStore has no public size; its dict is what would grow with every address seen.
        assert len(store._store) == 3
        time.sleep(2.1)  # past the three windows and the sweep interval (one window)
        with visitor(url) as client:
            assert client.get("/").status_code == 200
        assert len(store._store) == 1


def test_off_disables_the_limit(settings: Settings, engine: sa.Engine) -> None:
    with serve(settings, "off") as url, visitor(url) as client:
        assert {client.get("/").status_code for _ in range(20)} == {200}


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        # One subscriber holds a /64: rotating the host part does not buy a new budget.
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:1:2:3", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_its_64(peer: str, key: str) -> None:
    scope: Any = {"type": "http", "client": (peer, 50000), "headers": [], "path": "/", "query_string": b""}
    assert client_key(Request(scope)) == key


@pytest.mark.parametrize("value", ["60", "0/minute", "10/week", "ten/minute", "60/minute ", ""])
def test_a_malformed_setting_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="public_rate_limit"):
        ServerSettings(public_rate_limit=value)


# ---- exact-number lookups: a budget of their own (issue 15 #1) ----


def test_exact_number_lookups_have_their_own_tighter_budget_on_the_api_and_the_page(
    settings: Settings, engine: sa.Engine
) -> None:
    app = create_app(
        settings.override(server={"public_rate_limit": "100/minute", "public_number_lookup_limit": "3/hour"}),
        run_scheduler=False,
    )
    number, other = "11010519491231002X", "110105194912310038"
    with serve(settings, "100/minute", app) as url, visitor(url, accept="application/json") as client:
        assert client.get("/v1/public/defaulters", params={"id_number": number}).status_code == 200
        assert client.get("/v1/public/defaulters", params={"q": number}).status_code == 200
        assert client.get("/", params={"q": other}).status_code == 200  # the web page counts too
        refused = client.get("/v1/public/defaulters", params={"id_number": other})
        assert refused.status_code == 429
        assert _problem(refused)["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
        page = client.get("/", params={"q": number}, headers={"accept": "text/html"})
        assert page.status_code == 429
        # Names are still searched: only confirmations of a number are rationed.
        assert client.get("/v1/public/defaulters", params={"q": "张伟"}).status_code == 200
        # An invalid number costs nothing (nothing is confirmed) and answers its own 400.
        assert client.get("/v1/public/defaulters", params={"id_number": "123"}).status_code == 400
        with visitor(url) as neighbour:
            assert neighbour.get("/v1/public/defaulters", params={"id_number": number}).status_code == 200


def test_a_refused_number_lookup_answers_with_the_number_budgets_own_headers_and_reason(
    settings: Settings, engine: sa.Engine
) -> None:
    """Not the general budget's RateLimit-* beside the number budget's Retry-After, nor a
    detail that says only "too many requests": the budget that refused, and its numbers."""
    app = create_app(
        settings.override(server={"public_rate_limit": "60/minute", "public_number_lookup_limit": "2/hour"}),
        run_scheduler=False,
    )
    number = "11010519491231002X"
    with serve(settings, "60/minute", app) as url, visitor(url, accept="application/json") as client:
        for _ in range(2):
            served = client.get("/v1/public/defaulters", params={"q": number})
            assert served.status_code == 200
            assert served.headers["RateLimit-Limit"] == "60"  # a served request: the general budget's
        refused = client.get("/v1/public/defaulters", params={"q": number})
        assert refused.status_code == 429
        body = _problem(refused)
        retry_after = refused.headers["Retry-After"]
        assert 3500 <= int(retry_after) <= 3600
        assert refused.headers["RateLimit-Limit"] == "2"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert refused.headers["RateLimit-Reset"] == retry_after
        assert refused.headers["RateLimit-Policy"] == "2; w=3600"
        assert body["code"] == "rate_limited"
        assert body["retry_after"] == int(retry_after)
        assert "number" in body["detail"] and "lookup" in body["detail"]
        assert number not in refused.text and number not in str(refused.headers)

        page = client.get("/", params={"q": number}, headers={"accept": "text/html"})
        assert page.status_code == 429
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["RateLimit-Limit"] == "2"
        assert page.headers["RateLimit-Remaining"] == "0"
        assert page.headers["RateLimit-Reset"] == page.headers["Retry-After"]
        assert "查询过于频繁" in page.text
        assert "按证件号码查询" in page.text
        assert f"{page.headers['Retry-After']} 秒后再试" in page.text
        assert number not in page.text
