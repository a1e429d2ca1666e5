"""HTTP as RFC 9110/9111 say, and links that a client cannot point elsewhere (issue 15 #14):
URLs from REGISTRY_PUBLIC_BASE_URL, never from Host; HEAD wherever GET; 405 with Allow;
`Cache-Control: no-store` on authenticated answers; outbound URLs logged without queries."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import feedparser
import httpx
import pytest

from registry.logs import configure_logging
from registry.settings import ServerSettings, Settings
from tests.support.checks import bank, publish_person, unlisted_id
from tests.support.harness import CourtHandle, Registry
from tests.support.publishing import publish, sync_feeds

EVIL = "evil.example"


def test_feed_and_export_links_come_from_the_configured_origin_not_the_host_header(
    registry: Registry, court: CourtHandle, settings: Settings
) -> None:
    publish(registry, court, 1)
    sync_feeds(registry.engine)
    with registry.http() as http:
        for path in ("/feeds/atom.xml", "/feeds/rss.xml"):
            parsed = feedparser.parse(http.get(path, headers={"Host": EVIL}).content)
            hrefs = [link.href for link in parsed.feed.links]
            assert hrefs and all(href.startswith(registry.url + "/") for href in hrefs), hrefs
        feed = http.get("/feeds/feed.json", headers={"Host": EVIL}).json()
        assert feed["feed_url"].startswith(registry.url + "/") and feed["home_page_url"] == registry.url + "/"
        listed = http.get("/v1/exports", headers={"Host": EVIL})
        assert listed.status_code == 200 and EVIL not in listed.text


def test_the_base_url_setting_is_an_origin() -> None:
    assert (
        ServerSettings(public_base_url="https://registry.example/").base_url() == "https://registry.example"
    )
    assert ServerSettings(host="127.0.0.1", port=8123).base_url() == "http://127.0.0.1:8123"
    for bad in ("registry.example", "ftp://registry.example", "https://registry.example/?a=1"):
        with pytest.raises(ValueError, match="public_base_url"):
            ServerSettings(public_base_url=bad)


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/feeds/atom.xml",
        "/v1/checks/purposes",
        "/v1/public/defaulters?q=%E5%BC%A0%E4%BC%9F",
        "/",
        "/v1/courts",
    ],
)
def test_head_answers_wherever_get_does_without_a_body(registry: Registry, path: str) -> None:
    with registry.http() as http:
        got = http.get(path)
        head = http.head(path)
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/healthz", {"GET", "HEAD"}),
        ("DELETE", "/v1/checks", {"POST"}),
        ("PUT", "/feeds/atom.xml", {"GET", "HEAD"}),
        ("GET", "/v1/checks/verify", {"POST"}),
    ],
)
def test_a_405_names_the_allowed_methods(
    registry: Registry, method: str, path: str, allowed: set[str]
) -> None:
    with registry.http() as http:
        answer = http.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "method_not_allowed"
    # Litestar answers OPTIONS on every path (with the same Allow).
    assert set(re.split(r",\s*", answer.headers["allow"])) == allowed | {"OPTIONS"}
    with registry.http() as http:
        assert http.options(path).status_code in {200, 204}


def test_authenticated_answers_are_never_stored(
    registry: Registry, court: CourtHandle, admin: httpx.Client
) -> None:
    listing_id, body = publish_person(registry, court)
    client_id, bank_http = bank(registry)
    with registry.http(court.api_key) as http:
        answers = [http.get(f"/v1/listings/{listing_id}")]
    with bank_http:
        subjects = [{"id_number": body["debtor"]["id_number"]}, {"id_number": unlisted_id(registry)}]
        answers.append(
            bank_http.post(
                "/v1/checks", json={"subjects": subjects, "purpose": "loan_application", "reference": "r"}
            )
        )
        answers.append(bank_http.get("/v1/watchlist"))
    answers.append(admin.get(f"/v1/admin/banks/{client_id}/query-log"))
    answers.append(admin.get("/v1/admin/banks/nobody/query-log", headers={"Authorization": "Bearer wrong"}))
    for answer in answers:
        assert answer.headers.get("cache-control") == "no-store", (answer.request.url, answer.headers)
        assert "authorization" in answer.headers.get("vary", "").lower()
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 401]
    # The public list keeps its own caching.
    with registry.http() as http:
        assert http.get("/feeds/atom.xml").headers["cache-control"].startswith("public")


@pytest.fixture
def service_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_outbound_urls_are_logged_without_their_query(
    registry: Registry, service_logging: None, fmt: str
) -> None:
    configure_logging("INFO", fmt)  # type: ignore[arg-type]
    # The service's own handler, read through a buffer of its own: the server thread also writes
    # to stderr, and a capture of the process's descriptors once lost the head of this line.
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    host_port = registry.url.removeprefix("http://")
    with httpx.Client() as http:
        http.get(
            f"http://user:hunter2@{host_port}/healthz", params={"token": "s3cr3t", "id": "11010519491231002X"}
        )
    logged = buffer.getvalue()
    assert f"http://{host_port}/healthz" in logged
    for secret in ("s3cr3t", "11010519491231002X", "hunter2", "token="):
        assert secret not in logged


def test_prometheus_answers_name_their_charset_once(registry: Registry) -> None:
    """prometheus_client's type already names `charset=utf-8` and Litestar adds it to any
    text/* type: scrapers were sent it twice."""
    with registry.http(registry.client("admin")) as http:
        for path in ("/metrics", "/metrics/statistics", "/metrics/corrections"):
            answer = http.get(path)
            assert answer.status_code == 200, (path, answer.text)
            content_type = answer.headers["content-type"]
            assert content_type.startswith("text/plain; version="), content_type
            assert content_type.count("charset") == 1, content_type
