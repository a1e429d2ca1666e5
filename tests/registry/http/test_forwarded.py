"""Forwarded headers are believed only from the proxies an operator names
(REGISTRY_FORWARDED_ALLOW_IPS, none by default): a client that sends a new X-Forwarded-For
with each request does not get a new public budget with it (issue 15 #10). Against
`registry serve` as an operator starts it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from registry.settings import ServerSettings, Settings
from tests.support.processes import web_process


def _codes(url: str, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=30, headers={"accept": "application/json"}) as client:
        search = {"q": "张伟"}
        return [
            client.get("/v1/public/defaulters", params=search, headers={"X-Forwarded-For": xff}).status_code
            for xff in forwarded
        ]


ROTATING = [f"203.0.113.{n}" for n in range(1, 6)]


def test_a_rotating_forwarded_for_does_not_bypass_the_public_limit(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    env = {"REGISTRY_PUBLIC_RATE_LIMIT": "3/minute", "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    with web_process(settings, env, tmp_path / "web.log") as url:
        # uvicorn's own FORWARDED_ALLOW_IPS is not what the registry reads: the peer counts.
        assert _codes(url, ROTATING) == [200, 200, 200, 429, 429]


def test_a_named_proxy_is_believed_and_its_clients_counted_apart(
    settings: Settings, engine: sa.Engine, tmp_path: Path
) -> None:
    env = {"REGISTRY_PUBLIC_RATE_LIMIT": "3/minute", "REGISTRY_FORWARDED_ALLOW_IPS": "127.0.0.0/8"}
    with web_process(settings, env, tmp_path / "web.log") as url:
        assert _codes(url, ROTATING) == [200] * 5
        # The proxy appends the address it saw: what a client wrote before it does not count.
        assert _codes(url, [f"198.51.100.{n}, 203.0.113.9" for n in range(5)]) == [200, 200, 200, 429, 429]


@pytest.mark.parametrize("value", ["proxy.example", "10.0.0.1/33", "127.0.0.1,,nonsense"])
def test_a_setting_that_names_no_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="forwarded_allow_ips"):
        ServerSettings(forwarded_allow_ips=value)


def test_none_are_trusted_by_default() -> None:
    assert ServerSettings().trusted_proxies() == []
