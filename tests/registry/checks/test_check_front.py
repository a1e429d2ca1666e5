"""The raw ASGI front of `POST /v1/checks` (`registry.checks.front`) answers as Litestar's
route does: two real servers on one database, one with the front and one without
(`REGISTRY_CHECK_FAST_PATH=false`), get the same requests, good and bad, and must give the
same status, headers and problem bodies, and answers of the same shape. The front's server
records which requests reached Litestar, so the test also shows which ones the front took."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from registry.calendar import today_in_china
from registry.checks.controllers import CHECK_BODY_BYTES
from registry.checks.front import check_front
from registry.settings import Settings
from registry.wiring import Plugin
from service.app import create_app
from service.plugins import PLUGINS
from tests.support.checks import bank, publish_person, unlisted_id
from tests.support.harness import CourtHandle, Registry, serve_app

# What differs between any two answers: the date, the request's own id, and the answer's
# length (a check's answer carries fresh ids, times and nonces of fixed width, so it does
# not differ in fact; the bodies are compared below).
VOLATILE_HEADERS = {"date", "x-request-id", "content-length"}
JSON = "application/json"
JSON_TYPE = {"content-type": JSON}


class Pair:
    """A server with the front and one without, on the same database."""

    def __init__(self, front: str, route: str, reached_litestar: list[str]) -> None:
        self.front = front
        self.route = route
        self.reached_litestar = reached_litestar

    def post(self, content: bytes, headers: dict[str, str]) -> tuple[httpx.Response, httpx.Response]:
        answers = []
        for base in (self.front, self.route):
            with httpx.Client(base_url=base, timeout=30) as http:
                answers.append(http.post("/v1/checks", content=content, headers=headers))
        return answers[0], answers[1]


def _recording(reached: list[str]) -> Plugin:
    """The checks plugin, its front handing on to a Litestar that notes each request it gets."""
    checks = next(plugin for plugin in PLUGINS if plugin.name == "checks")

    def front(app: Any, state: Any, settings: Settings) -> Any:
        async def litestar(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                reached.append(scope["method"] + " " + scope["path"])
            await app(scope, receive, send)

        return check_front(litestar, state, settings)

    return dataclasses.replace(checks, front=front)


@contextmanager
def _servers(settings: Settings) -> Iterator[Pair]:
    reached: list[str] = []
    plugins = [_recording(reached) if plugin.name == "checks" else plugin for plugin in PLUGINS]
    with_front = create_app(settings, run_scheduler=False, plugins=plugins)
    without = create_app(settings.override(checks={"fast_path": False}), run_scheduler=False)
    with serve_app(with_front) as front, serve_app(without) as route:
        yield Pair(front, route, reached)


@pytest.fixture
def pair(settings: Settings, engine: sa.Engine) -> Iterator[Pair]:
    with _servers(settings) as servers:
        yield servers


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.multi_items() if name not in VOLATILE_HEADERS]


def _b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _shape(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what is fresh in each (ids, times, nonces, commitments, signature)."""
    header, payload, _ = answer.pop("receipt").split(".")
    claims = _b64url_json(payload)
    for volatile in ("jti", "iat", "checked_at"):
        assert claims.pop(volatile)
    for subject in claims["subjects"]:
        assert len(subject.pop("commitment")) == 43
    for result in answer["results"]:
        assert len(result.pop("nonce")) == 43
    assert answer.pop("check_id").startswith("ck_") and answer.pop("checked_at").endswith("Z")
    return {"answer": answer, "receipt_header": _b64url_json(header), "claims": claims}


def assert_same(front: httpx.Response, route: httpx.Response, what: str) -> None:
    assert front.status_code == route.status_code, (what, front.text, route.text)
    assert _headers(front) == _headers(route), what
    assert front.headers["x-request-id"] and route.headers["x-request-id"], what
    if route.status_code == 200:
        assert _shape(front.json()) == _shape(route.json()), what
    else:
        assert front.content == route.content, what


def _body(subjects: list[Any], **extra: Any) -> bytes:
    document = {"subjects": subjects, "purpose": "loan_application", "reference": "LA-1", **extra}
    return json.dumps(document, ensure_ascii=False).encode()


def test_the_front_answers_as_the_route_does(registry: Registry, court: CourtHandle, pair: Pair) -> None:
    _, listed = publish_person(registry, court)
    debtor = listed["debtor"]
    person = {"id_number": debtor["id_number"], "name": debtor["name"]}
    stranger = {"id_number": unlisted_id(registry)}
    _, http = bank(registry)
    http.close()
    key = http.headers["authorization"]
    json_type = JSON_TYPE
    agency = registry.client("agency")
    as_bank = {"authorization": key, **json_type}
    answered_by_the_front: list[tuple[str, bytes, dict[str, str]]] = [
        ("listed, with its name", _body([person]), as_bank),
        ("not listed", _body([stranger]), as_bank),
        ("a batch with a bad subject", _body([person, {"id_number": "123"}, stranger]), as_bank),
        ("a proxy's request id", _body([stranger]), {**as_bank, "x-request-id": "edge-42"}),
        ("not JSON", b"{", as_bank),
        ("empty", b"", as_bank),
        ("a number for a text", _body([{"id_number": 110105}]), as_bank),
        ("an unknown member", _body([stranger], extra=1), as_bank),
        ("no reference", json.dumps({"subjects": [stranger], "purpose": "credit_review"}).encode(), as_bank),
        ("an unknown purpose", _body([stranger], purpose="curiosity"), as_bank),
        ("no subjects", _body([]), as_bank),
        ("too many subjects", _body([stranger] * 1001), as_bank),
        ("a control character", _body([stranger], reference="LA\u0007"), as_bank),
        ("a bidi override in a name: its subject's error", _body([{**person, "name": "\u202eab"}]), as_bank),
        ("no key", _body([stranger]), json_type),
        ("an empty bearer", _body([stranger]), {"authorization": "Bearer", **json_type}),
        ("another scheme", _body([stranger]), {"authorization": "Basic eDp5", **json_type}),
        ("an unknown key", _body([stranger]), {"authorization": "Bearer rk_nope", **json_type}),
        ("a court's key", _body([stranger]), {"authorization": f"Bearer {court.api_key}", **json_type}),
        ("an agency's key", _body([stranger]), {"authorization": f"Bearer {agency}", **json_type}),
        ("an unknown key, not JSON", b"{", {"authorization": "Bearer rk_nope", **json_type}),
    ]  # fmt: skip
    for name, content, headers in answered_by_the_front:
        front, route = pair.post(content, headers)
        assert_same(front, route, name)
        assert pair.reached_litestar == [], name
    # The front's problems are the route's: spot-check that they are the expected ones.
    front, _ = pair.post(_body([stranger]), {"authorization": "Bearer rk_nope", **json_type})
    assert front.status_code == 401 and front.json()["code"] == "unauthorized"
    assert front.headers["www-authenticate"] == "Bearer"
    front, _ = pair.post(b"{", as_bank)
    assert front.status_code == 400 and front.json()["code"] == "invalid_json"
    assert front.headers["cache-control"] == "no-store" and front.headers["vary"] == "Authorization"

    handed_on: list[tuple[str, bytes, dict[str, str]]] = [
        ("another content type", _body([stranger]), {"authorization": key, "content-type": "text/plain"}),
        ("JSON with a charset", _body([stranger]), {**as_bank, "content-type": f"{JSON}; charset=utf-8"}),
        ("over the body cap", b"[" + b" " * CHECK_BODY_BYTES + b"]", as_bank),
        ("over the cap, no key", b"[" + b" " * CHECK_BODY_BYTES + b"]", json_type),
    ]  # fmt: skip
    for name, content, headers in handed_on:
        front, route = pair.post(content, headers)
        assert_same(front, route, name)
        assert pair.reached_litestar == ["POST /v1/checks"], name
        pair.reached_litestar.clear()
    # Other routes under the same prefix are Litestar's.
    with httpx.Client(base_url=pair.front) as http:
        assert http.get("/v1/checks/purposes").status_code == 200
        assert http.get("/v1/checks").status_code == 405
    assert pair.reached_litestar == ["GET /v1/checks/purposes", "GET /v1/checks"]
    with registry.engine.connect() as conn:
        logged = conn.execute(sa.text("SELECT count(*) FROM check_log")).scalar_one()
    # Each server logged its good checks, subject by subject (1 + 1 + 3 + 1 + 1), and the two
    # handed-on good checks (1 + 1 each); no refused request logged anything.
    assert logged == 2 * (7 + 2)


def _without_retry(response: httpx.Response) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    # How long to wait is the one thing two refusals a moment apart may tell differently.
    headers = [(name, value) for name, value in _headers(response) if name != "retry-after"]
    return headers, {k: v for k, v in response.json().items() if k != "retry_after"}


def test_a_throttled_or_spent_bank_gets_the_same_answer(
    registry: Registry, settings: Settings, engine: sa.Engine
) -> None:
    stranger = {"id_number": unlisted_id(registry)}
    with _servers(settings.override(checks={"rate_per_second": 2})) as pair:
        answers = []
        for base in (pair.front, pair.route):
            # A bank of its own at each server: without a shared store each process counts alone.
            _, http = bank(registry, f"Bank at {base}")
            with http:
                answers.append(
                    [
                        http.post(base + "/v1/checks", content=_body([stranger]), headers=JSON_TYPE)
                        for _ in range(5)
                    ]
                )
        assert pair.reached_litestar == []
    front, route = answers
    assert front[0].status_code == 200 and front[-1].status_code == 429
    assert route[0].status_code == 200 and route[-1].status_code == 429
    assert front[-1].json()["code"] == "rate_limited"
    assert _without_retry(front[-1]) == _without_retry(route[-1])
    assert 1 <= int(front[-1].headers["retry-after"]) <= 2

    spent = []
    with _servers(settings) as pair:
        for base in (pair.front, pair.route):
            client_id, http = bank(registry, f"Spent bank at {base}")
            with engine.begin() as conn:
                conn.execute(
                    sa.text("INSERT INTO check_usage (client_id, day, subjects) VALUES (:c, :d, :n)"),
                    {"c": client_id, "d": today_in_china(), "n": settings.checks.daily_quota - 1},
                )
            with http:
                spent.append(
                    http.post(base + "/v1/checks", content=_body([stranger, stranger]), headers=JSON_TYPE)
                )
        assert pair.reached_litestar == []
    assert spent[0].status_code == 429 and spent[0].json()["code"] == "daily_quota_exceeded"
    assert _without_retry(spent[0]) == _without_retry(spent[1])


def test_the_front_counts_a_bank_in_the_shared_rate(
    registry: Registry, settings: Settings, engine: sa.Engine, redis_url: str
) -> None:
    """With REGISTRY_REDIS_URL the rate is one budget across processes: a check the route's
    process admitted counts at the front's, and the other way round."""
    shared = settings.override(
        checks={"rate_per_second": 1},
        shared_store={"url": redis_url, "prefix": f"test-front-{secrets.token_hex(4)}:"},
    )
    stranger = {"id_number": unlisted_id(registry)}
    with _servers(shared) as pair:
        for first, second in ((pair.front, pair.route), (pair.route, pair.front)):
            _, http = bank(registry, f"Bank first at {first}")
            with http:
                admitted = http.post(first + "/v1/checks", content=_body([stranger]), headers=JSON_TYPE)
                refused = http.post(second + "/v1/checks", content=_body([stranger]), headers=JSON_TYPE)
            assert admitted.status_code == 200
            assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert pair.reached_litestar == []


# A subject whose identifier fields (or name) hold a character `registry.text` forbids, or
# run past 256 characters: that subject's error, with its field's code, the rest answered.
PERSON_OK = "33032919690124847X"
UNREADABLE_SUBJECTS: list[tuple[dict[str, Any], str, str]] = [
    ({"id_number": "11010519491231002X\u200b"}, "invalid_id_number", "U+200B"),
    ({"id_number": "1" * 257}, "invalid_id_number", "256"),
    (
        {"id_type": "passport\u202e", "id_number": "E1234567", "nationality": "CAN"},
        "unknown_id_type",
        "U+202E",
    ),
    ({"id_type": "p" * 300, "id_number": "E1234567", "nationality": "CAN"}, "unknown_id_type", "256"),
    (
        {"id_type": "passport", "id_number": "E1234567", "nationality": "CA\u0000N"},
        "invalid_nationality",
        "U+0000",
    ),
    ({"credit_code": "91110000600037341L\u00ad"}, "invalid_credit_code", "U+00AD"),
    ({"credit_code": "9" * 1000}, "invalid_credit_code", "256"),
    ({"organization_code": "\ufeff60003734-1"}, "invalid_organization_code", "U+FEFF"),
    (
        {"registration": {"country": "GBR\u2028", "number": "SC123456"}},
        "invalid_registration_country",
        "U+2028",
    ),
    (
        {"registration": {"country": "GBR", "number": "SC\U000e0041123456"}},
        "invalid_registration_number",
        "U+E0041",
    ),
    ({"registration": {"country": "GBR", "number": "S" * 257}}, "invalid_registration_number", "256"),
    ({"id_number": PERSON_OK, "name": "张\u200b三"}, "subject_identifier", "U+200B"),
    ({"id_number": PERSON_OK, "name": "张" * 257}, "subject_identifier", "256"),
]


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf8", "escaped"])
def test_an_unreadable_subject_is_its_own_error_both_ways_in(
    registry: Registry, pair: Pair, ascii_only: bool
) -> None:
    _, http = bank(registry)
    http.close()
    as_bank = {"authorization": http.headers["authorization"], **JSON_TYPE}
    good = {"id_number": PERSON_OK}

    def body(subjects: list[Any], **extra: Any) -> bytes:
        document = {"subjects": subjects, "purpose": "loan_application", "reference": "LA-1", **extra}
        return json.dumps(document, ensure_ascii=ascii_only).encode()

    for subject, code, shown in UNREADABLE_SUBJECTS:
        front, route = pair.post(body([good, subject, good]), as_bank)
        assert_same(front, route, subject)
        assert front.status_code == 200, (subject, front.text)
        results = front.json()["results"]
        assert [r.get("error", {}).get("code") for r in results] == [None, code, None], subject
        assert [r.get("listed") for r in results] == [False, None, False], subject
        assert shown in results[1]["error"]["detail"], subject
        # The refused text is never shown back.
        for value in [*subject.values(), *subject.get("registration", {}).values()]:
            if isinstance(value, str) and value not in (PERSON_OK, "E1234567", "CAN", "GBR", "SC123456"):
                assert value not in front.text and value not in results[1]["error"]["detail"], subject
        assert results[1]["index"] == 1 and set(results[1]) == {"index", "error", "nonce"}, subject
    assert pair.reached_litestar == []

    # What lies outside the subjects still refuses the whole request, whatever the subjects hold.
    bad = {"id_number": "11010519491231002X\u200b"}
    whole: list[tuple[str, bytes, int, str, str | None]] = [
        (
            "a control character in the reference",
            body([good, bad], reference="LA\u0007"),
            422,
            "invalid_field",
            "/reference",
        ),
        (
            "a format character in the purpose",
            body([bad], purpose="loan_application\u200b"),
            422,
            "invalid_field",
            "/purpose",
        ),
        ("an unknown member in a subject", body([{**bad, "nick\u200b": "x"}]), 422, "invalid_field", None),
        (
            "a number for an id_number",
            body([bad, {"id_number": 110105}]),
            422,
            "invalid_field",
            "/subjects/1/id_number",
        ),
        ("too many subjects", body([bad] * 1001), 413, "batch_too_large", "/subjects"),
        (
            "no reference",
            json.dumps({"subjects": [bad], "purpose": "credit_review"}).encode(),
            422,
            "invalid_field",
            "/reference",
        ),
    ]
    for name, content, status, code, pointer in whole:
        front, route = pair.post(content, as_bank)
        assert_same(front, route, name)
        assert (front.status_code, front.json()["code"]) == (status, code), (name, front.text)
        if pointer is not None:
            assert front.json()["pointer"] == pointer, name
    assert pair.reached_litestar == []
