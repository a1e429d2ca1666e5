"""Bodies after credentials, and each route's body cap, over real sockets on a real server.

A client that sends a large body without a valid key must be answered before it has sent
it: the server refuses from the headers and never takes the body in (issue 15 #9).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from litestar.routes import HTTPRoute

from registry.checks.controllers import CHECK_BODY_BYTES, VERIFY_BODY_BYTES
from registry.http.body import DOCUMENT_BODY_BYTES
from registry.settings import Settings
from service.app import create_app
from tests.support.checks import bank, unlisted_id
from tests.support.harness import Registry, serve_app

BIG = 60 * 1024 * 1024  # under the app-wide 64 MiB: a server that reads first takes it all in


def _first_answer_while_sending(
    url: str, path: str, headers: dict[str, str], announced: int, sent: int = 1024 * 1024
) -> tuple[bytes, float]:
    """POST `announced` bytes of body but send only `sent` of them, then wait for the answer
    (at most 10 s): the status line and headers the server sent, and how long it took. A
    server that reads the body before it decides never answers a body that is not sent."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {announced}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        started = time.monotonic()
        chunk = b"[" * 65536
        for _ in range(sent // len(chunk)):
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: what we want
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            answer += data
        return answer, time.monotonic() - started


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:80]
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-key", "Basic Zm9vOmJhcg=="],
    ids=["no key", "unknown key", "not bearer"],
)
def test_a_check_without_a_valid_key_is_refused_before_its_body_is_read(
    registry: Registry, server_url: str, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    answer, seconds = _first_answer_while_sending(server_url, "/v1/checks", headers, BIG)
    assert _status(answer) == 401
    assert b"application/problem+json" in answer
    assert seconds < 5


def test_a_court_key_is_refused_before_the_body_too(registry: Registry, server_url: str) -> None:
    court = registry.court()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {court.api_key}"}
    answer, _ = _first_answer_while_sending(server_url, "/v1/checks", headers, BIG)
    assert _status(answer) == 403


def test_a_bank_body_over_the_checks_cap_is_refused_from_its_length(
    registry: Registry, server_url: str
) -> None:
    _, http = bank(registry)
    headers = {"Content-Type": "application/json", "Authorization": http.headers["authorization"]}
    answer, seconds = _first_answer_while_sending(server_url, "/v1/checks", headers, CHECK_BODY_BYTES + 1)
    assert _status(answer) == 413
    assert seconds < 5


def test_a_full_check_fits_its_cap(registry: Registry) -> None:
    _, http = bank(registry)
    subjects = [{"id_number": unlisted_id(registry), "name": "欧阳娜娜"} for _ in range(1000)]
    with http:
        answer = http.post(
            "/v1/checks", json={"subjects": subjects, "purpose": "loan_application", "reference": "r"}
        )
        assert answer.status_code == 200, answer.text
        receipt = answer.json()["receipt"]
    # Its receipt fits the verify cap with room for several listings a subject.
    assert len(receipt) * 3 < VERIFY_BODY_BYTES


@pytest.fixture
def limited(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    app = create_app(settings.override(server={"public_rate_limit": "3/minute"}), run_scheduler=False)
    with serve_app(app) as url:
        yield url


def test_receipt_verification_is_under_the_public_budget_with_a_small_cap(limited: str) -> None:
    with httpx.Client(base_url=limited, timeout=30) as client:
        codes = [client.post("/v1/checks/verify", json={"receipt": "a.b.c"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    answer, seconds = _first_answer_while_sending(
        limited, "/v1/checks/verify", {"Content-Type": "application/json"}, VERIFY_BODY_BYTES + 1
    )
    assert _status(answer) in {413, 429}
    assert seconds < 5


def test_verify_refuses_a_body_over_its_cap(server_url: str) -> None:
    answer, seconds = _first_answer_while_sending(
        server_url, "/v1/checks/verify", {"Content-Type": "application/json"}, VERIFY_BODY_BYTES + 1
    )
    assert _status(answer) == 413
    assert seconds < 5


def test_every_route_but_the_listing_batch_has_a_cap_of_its_own(settings: Settings) -> None:
    """Only the listing batch takes REGISTRY_REQUEST_MAX_BODY_BYTES; a route added later
    without a cap of its own fails here."""
    app = create_app(settings, run_scheduler=False)
    app_wide = settings.server.request_max_body_bytes
    caps: dict[str, int] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "data" not in handler.parsed_fn_signature.parameters:
                continue
            for method in handler.http_methods:
                caps[f"{method} {route.path}"] = handler.resolve_request_max_body_size() or 0
    assert caps.pop("POST /v1/listings/batch") == app_wide
    assert caps, "no route with a body found"
    too_big = {name: cap for name, cap in caps.items() if not 0 < cap < app_wide}
    assert not too_big
    assert caps["POST /v1/checks"] == CHECK_BODY_BYTES
    assert caps["POST /v1/listings"] == DOCUMENT_BODY_BYTES
